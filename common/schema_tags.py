"""The API's areas (plain data: the settings read it for drf-spectacular's TAGS, common.schema tags by it)."""

# Area -> what the group is about (SPECTACULAR_SETTINGS["TAGS"] shows these descriptions).
TAGS = {
    "bets": "Place a bet on the current round and read your bets.",
    "rounds": "Public market data: the current round, history and one round (no token needed).",
    "me": "Your account: balance, statement and payout addresses.",
    "deposits": "Deposit intents, your deposits and the custodian's signed webhook.",
    "withdrawals": "Request, list and cancel withdrawals.",
    "ops": "Operations (staff or the ops token): health details and the emergency stop, breaker, maintenance.",
    "auth": "Get an API token for your e-mail and password.",
}

# (method, path after /api/v1 or the legacy path) -> the operation's title in /api/docs/.
SUMMARIES = {
    ("POST", "/auth/token"): "Get an API token",
    ("GET", "/bets"): "List my bets",
    ("POST", "/bets"): "Place a bet",
    ("GET", "/bets/{bet_id}"): "Get one of my bets",
    ("GET", "/deposits"): "List my deposits",
    ("GET", "/deposits/intents"): "List my deposit intents",
    ("POST", "/deposits/intents"): "Create a deposit intent (where to send USDC)",
    ("POST", "/deposits/webhook"): "Deposit webhook (the custodian's signed callback)",
    ("GET", "/me"): "My account and balance",
    ("GET", "/me/payout-addresses"): "List my payout addresses",
    ("POST", "/me/payout-addresses"): "Register a payout address",
    ("GET", "/me/statement"): "My statement (cash ledger lines)",
    ("GET", "/ops/circuit-breaker"): "Circuit breaker state",
    ("POST", "/ops/circuit-breaker"): "Reset the circuit breaker",
    ("GET", "/ops/emergency-stop"): "Emergency stop state",
    ("POST", "/ops/emergency-stop"): "Switch the emergency stop",
    ("GET", "/ops/health"): "Detailed health",
    ("GET", "/ops/maintenance"): "Maintenance mode state",
    ("POST", "/ops/maintenance"): "Switch maintenance mode",
    ("GET", "/rounds"): "Round history",
    ("GET", "/rounds/{code}"): "One round",
    ("GET", "/rounds/current"): "The current round (or the last settled one)",
    ("GET", "/withdrawals"): "List my withdrawals",
    ("POST", "/withdrawals"): "Request a withdrawal",
    ("GET", "/withdrawals/{withdrawal_id}"): "Get one of my withdrawals",
    ("POST", "/withdrawals/{withdrawal_id}/cancel"): "Cancel a queued withdrawal",
    ("POST", "/simulate/deposit_webhook"): "Simulate a deposit (development only)",
}
