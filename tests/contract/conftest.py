"""The ``official`` fixture: the contract documents in tests/contracts/."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.contract import official as official_contracts


@pytest.fixture
def official() -> ModuleType:
    return official_contracts
