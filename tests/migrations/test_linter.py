"""The backward-compatibility linter runs in `make test` (both passes: SQLite's and PostgreSQL's SQL) and
refuses a migration that would break the release still serving during a rolling deploy."""

import shutil
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

# sqlmigrate on SQLite needs to switch off foreign key checks, which it cannot inside the test's transaction
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.money]  # money: linted in both passes

DROP_COLUMN = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketdata", "0001_initial")]
    operations = [migrations.RemoveField(model_name="officialclose", name="source")]
'''

NOT_NULL_WITHOUT_DB_DEFAULT = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("marketdata", "0002_{previous}")]
    operations = [
        migrations.AddField(
            model_name="calendaroverride", name="approved_by_label", field=models.CharField(max_length=64, default="")
        )
    ]
'''


@pytest.fixture
def lint(capsys):
    """lint(*args) -> (exit code, what it printed): `manage.py lintmigrations` as `make test` runs it."""

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        try:
            call_command("lintmigrations", *args)  # it prints to sys.stdout itself
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return code, capsys.readouterr().out

    return run


def test_every_migration_of_ours_passes_the_backward_compatibility_linter(lint):
    code, output = lint()
    assert code == 0, output
    assert "Erroneous migrations: 0/" in output


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """marketdata's migrations copied into a package of their own, to plant migrations beside them."""

    def plant(files: dict[str, str]) -> None:
        package = tmp_path / "planted_marketdata_migrations"
        shutil.copytree(Path(__file__).parents[2] / "marketdata" / "migrations", package)
        for name, text in files.items():
            (package / f"{name}.py").write_text(text)
        monkeypatch.syspath_prepend(str(tmp_path))

    yield plant
    for module in [name for name in sys.modules if name.startswith("planted_marketdata_migrations")]:
        del sys.modules[module]


@pytest.mark.parametrize(
    ("name", "refusal"),
    [("0002_drop_source", "DROPPING columns"), ("0002_contract_drop_source", None)],
)
def test_a_planted_column_drop_is_refused_unless_it_is_the_named_contract_step(planted, lint, name, refusal):
    # given: marketdata with a migration that drops a column the running release still reads
    planted({name: DROP_COLUMN, "0003_label": NOT_NULL_WITHOUT_DB_DEFAULT.format(previous=name.split("_", 1)[1])})
    with override_settings(MIGRATION_MODULES={"marketdata": "planted_marketdata_migrations"}):
        code, output = lint("marketdata")
    # then: the drop is refused by name (or, as the contract step, let through); the NOT NULL column without
    # a database default is refused either way: the previous release inserts rows without it
    assert code == 1, output
    if refusal:
        assert f"(marketdata, {name})... ERR" in output and refusal in output, output
    else:
        assert f"(marketdata, {name})... IGNORE" in output, output
    assert "(marketdata, 0003_label)... ERR" in output and "NOT NULL constraint on columns" in output, output
