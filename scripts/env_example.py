"""Write `.env.example` from the settings that exist (ops.env_vars): `python scripts/env_example.py`.

`--check` exits 1 when the committed file differs from what the settings imply (tests/ops/test_env_example.py
asserts the same).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops.env_vars import ENV_EXAMPLE, env_example_text  # noqa: E402


def main() -> int:
    text = env_example_text()
    if "--check" in sys.argv[1:]:
        current = ENV_EXAMPLE.read_text() if ENV_EXAMPLE.exists() else ""
        if current != text:
            print(f"{ENV_EXAMPLE.name} is out of date: run `python scripts/env_example.py`.", file=sys.stderr)
            return 1
        print(f"{ENV_EXAMPLE.name} is up to date.")
        return 0
    ENV_EXAMPLE.write_text(text)
    print(f"Wrote {ENV_EXAMPLE} ({text.count(chr(10) + chr(10))} variables).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
