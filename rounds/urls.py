urlpatterns: list = []
runbook_urlpatterns: list = []
