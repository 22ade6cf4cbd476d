"""Target of the tracer's Python tests. Prints "ready PID", then one JSON line
of facts as the interpreter itself sees them, then sleeps in
outer -> middle -> Worker.leaf until it is killed."""

import ctypes
import json
import os
import sys
import threading
import time
import types
import warnings


def legacy_str(text):
    """A non-compact str whose characters live in a separate buffer, as the
    deprecated Py_UNICODE API (3.11 and older) makes them."""
    api = ctypes.pythonapi
    api.PyUnicode_FromUnicode.restype = ctypes.py_object
    api.PyUnicode_FromUnicode.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    api.PyUnicode_AsUnicode.restype = ctypes.c_void_p
    api.PyUnicode_AsUnicode.argtypes = [ctypes.py_object]
    api._PyUnicode_Ready.argtypes = [ctypes.py_object]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy = api.PyUnicode_FromUnicode(None, len(text))
    wide = text.encode("utf-32-le")
    ctypes.memmove(api.PyUnicode_AsUnicode(legacy), wide, len(wide))
    api._PyUnicode_Ready(legacy)
    return legacy


# One str of each storage: compact ASCII, compact with 1, 2 and 4 bytes a
# character, and (3.11 and older) legacy.
TEXTS = ["plain ascii", "grüße", "函数名", "emoji 😀"]
if sys.version_info < (3, 12):
    TEXTS.append(legacy_str("légacy"))


def name_of(code):
    return getattr(code, "co_qualname", code.co_name)


def report():
    caller = sys._getframe(1)
    chain = []
    frame = caller
    while frame is not None:
        # The caller will be one line further on, in time.sleep.
        line = frame.f_lineno + (1 if frame is caller else 0)
        chain.append([name_of(frame.f_code), line])
        frame = frame.f_back
    code = caller.f_code
    facts = {
        "runtime": ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime")),
        "code_type": id(types.CodeType),
        "tid": threading.get_native_id(),
        "thread_id": threading.get_ident(),
        "leaf": {
            "code": id(code),
            "name": name_of(code),
            "file": code.co_filename,
            "first_line": code.co_firstlineno,
        },
        "chain": chain,
        "texts": [[id(text), text] for text in TEXTS],
    }
    print("ready", os.getpid(), flush=True)
    print(json.dumps(facts), flush=True)


class Worker:
    def leaf(self):
        report()
        time.sleep(3600)


def middle():
    Worker().leaf()


def outer():
    middle()


outer()
