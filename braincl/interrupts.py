"""Ctrl-C for the command line: an interrupt that arrives while a module is being imported is held
until the import has finished, then raised as usual.

Python raises ``KeyboardInterrupt`` wherever the main thread is. Inside the import of a compiled
extension that calls back into Python (torchvision's and compressai's pybind11 modules) it cannot
be caught: the process aborts with "terminate called after throwing an instance of
'pybind11::error_already_set'", or the interrupt is swallowed by an import fallback and the command
goes on. Imports take seconds (torch, torchvision), so a user's Ctrl-C often lands in one. Held
until the import is done, it becomes an ordinary ``KeyboardInterrupt`` that ``braincl.cli``
turns into one line and exit status 130.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

_IMPORT_MACHINERY = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
RECHECK_S = 0.05  # how soon a held interrupt is tried again


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_MACHINERY:
            return True
        frame = frame.f_back
    return False


_state = {"held": False, "resender": None}  # an interrupt is held; the thread that re-sends it


def _resend() -> None:
    while True:
        threading.Event().wait(RECHECK_S)
        if not _state["held"]:
            return
        os.kill(os.getpid(), signal.SIGINT)


def _on_sigint(signum, frame):
    if _importing(frame):
        _state["held"] = True  # delivered again every RECHECK_S until the import has finished
        if _state["resender"] is None or not _state["resender"].is_alive():
            _state["resender"] = threading.Thread(target=_resend, daemon=True, name="braincl-sigint")
            _state["resender"].start()
        return
    _state["held"] = False
    raise KeyboardInterrupt


@contextmanager
def held_during_imports():
    """Install the handler for the duration of the block (in the main thread only; elsewhere Python
    delivers no signals anyway), then restore the one before. An interrupt still held when the
    block ends is raised there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        held, _state["held"] = _state["held"], False
    if held:
        raise KeyboardInterrupt
