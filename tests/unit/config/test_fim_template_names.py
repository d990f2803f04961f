"""The settings validate ``fim_template`` against names of their own, so that they import no feature
code; these must stay the templates ``inferlab.code.fim`` has."""

from __future__ import annotations

import pytest

from inferlab.code.fim import FIM_TEMPLATES, fim_template
from inferlab.config import ModelConfig
from inferlab.config.models import FIM_TEMPLATE_NAMES


def test_the_settings_know_exactly_the_templates_of_code_fim() -> None:
    assert set(FIM_TEMPLATES) == FIM_TEMPLATE_NAMES


def test_an_unknown_template_is_refused_with_the_message_of_code_fim() -> None:
    with pytest.raises(ValueError) as from_code:
        fim_template("nope")
    with pytest.raises(ValueError, match="fim_template") as from_settings:
        ModelConfig(name="a", backend="openai", url="http://x/v1", fim_template="nope")
    assert str(from_code.value) in str(from_settings.value)
