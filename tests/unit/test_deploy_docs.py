"""README "Operators" names every setting an operator can set."""

from pathlib import Path

from app.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_operators_section_names_every_setting() -> None:
    operators = README.split("\n## Operators\n", 1)[1]
    missing = [name for name in Settings.model_fields if f"`{name}`" not in operators]
    assert missing == []
