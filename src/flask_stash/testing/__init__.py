"""Test helpers for Flask-Stash users and backend authors (requires pytest).

* :class:`FakeClock`: a clock to inject into backends and stores, moved by hand.
* :class:`BackendContract`: the contract suite every backend must pass. Subclass it in a
  test module and implement ``make_backend``::

      from flask_stash.testing import BackendContract

      class TestMyBackend(BackendContract):
          def make_backend(self, clock):
              return MyBackend(clock=clock)
"""

from flask_stash.testing.clock import FakeClock
from flask_stash.testing.contract import BackendContract, CountingBackend

__all__ = ["BackendContract", "CountingBackend", "FakeClock"]
