"""gensim's ``mini_newsgroup`` test file read without unpickling: 200 Usenet posts, 2 topics.

The file is a zlib-compressed Python 2 pickle of a scikit-learn ``Bunch`` (a 200-post sample of
20 Newsgroups: ``alt.atheism`` and ``sci.space``). kiln never unpickles files (a pickle can run
code), so this module evaluates the pickle's opcodes itself (``inert_unpickle``, over
``pickletools.genops``): plain data (strings, numbers, lists, dicts) is rebuilt, and every
class or function the file names becomes an inert record that is never imported or called. From
that it takes the post texts (``data``), the label codes (the raw bytes of the ``target`` int64
array) and ``target_names``.

Each post's header block (From, Subject, Newsgroups, Path, ...) is removed, as scikit-learn's
``fetch_20newsgroups(remove=("headers",))`` does: the ``Newsgroups:`` line names the label.
Signatures and quoted replies stay, as they do in that setting.
"""

from __future__ import annotations

import pickletools
import zlib
from pathlib import Path

import numpy as np

from kiln.errors import DataError

__all__ = ["read_mini_newsgroup", "strip_headers", "inert_unpickle"]


def strip_headers(post: str) -> str:
    """The body of a Usenet post: everything after the first blank line (the header block ends there)."""
    _, blank, body = post.partition("\n\n")
    return body.strip() if blank else post.strip()


def read_mini_newsgroup(path: str | Path) -> tuple[list[str], list[str]]:
    """Read gensim's ``mini_newsgroup`` file: (post bodies, topic names), one per post.

    Raises:
        DataError: the file is not the zlib-compressed Bunch pickle described above.
    """
    path = Path(path)
    try:
        bunch = inert_unpickle(_inflate(path))
    except DataError as err:
        raise DataError(f"{path} is not gensim's mini_newsgroup file (a zlib-compressed pickle): {err}") from err
    except (OSError, zlib.error) as err:
        raise DataError(f"{path} is not gensim's mini_newsgroup file (a zlib-compressed pickle): {err}") from err
    state = _dict_of(bunch)
    if not isinstance(state, dict) or not {"data", "target", "target_names"} <= set(state):
        raise DataError(f"{path} does not hold the data/target/target_names of a scikit-learn Bunch.")
    try:
        posts = [_text(p) for p in state["data"]]
        codes = _int64_array(state["target"], path)
        names = [_text(n) for n in state["target_names"]]
    except DataError:
        raise
    except Exception as err:  # whatever shape a crafted file gives these values: a DataError, named
        raise DataError(f"{path}: its data/target/target_names are not posts, int64 labels and names "
                        f"({type(err).__name__}: {err}).") from err
    if len(codes) != len(posts) or not posts or codes.max() >= len(names) or codes.min() < 0:
        raise DataError(f"{path}: {len(posts)} posts, {len(codes)} labels and {len(names)} topic names disagree.")
    return [strip_headers(p) for p in posts], [names[c] for c in codes]


# gensim's file is 0.4 MB inflated; a file that inflates past this is not it (a zip bomb of 300 bytes
# would otherwise inflate to whatever it asks).
MAX_INFLATED_BYTES = 64 << 20


def _inflate(path: Path) -> bytes:
    """The file's zlib stream inflated, refused once it passes ``MAX_INFLATED_BYTES``."""
    inflater = zlib.decompressobj()
    data = inflater.decompress(path.read_bytes(), MAX_INFLATED_BYTES + 1)
    if len(data) > MAX_INFLATED_BYTES or inflater.unconsumed_tail:
        raise DataError(f"it inflates past {MAX_INFLATED_BYTES} bytes (the real file is about 0.4 MB)")
    return data


class Call:
    """What an object-building opcode would have built: the callable's dotted name, its arguments
    and the state BUILD would have set. Nothing is imported or called."""

    def __init__(self, name: str, args=()):
        self.name, self.args, self.state, self.items = name, args, None, []

    def __repr__(self) -> str:
        return f"Call({self.name!r})"


def inert_unpickle(blob: bytes):
    """Evaluate a pickle's data opcodes (strings, numbers, lists, tuples, dicts, memo) on a stack,
    turning every global/REDUCE/NEWOBJ/BUILD into an inert ``Call`` record.

    The same values the standard unpickler would give for plain data, with no code run: a class named in
    the file is never imported, so a malicious file can only give wrong data, never act. Work and
    memory are linear in the stream's length (marks are kept apart, as CPython's unpickler keeps
    them; no constructor runs on a number, so ``bytes(10**12)`` stays an inert record).

    Raises:
        DataError: the stream is not a pickle of plain data this reader understands.
    """
    try:
        return _evaluate(blob)
    except DataError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, AttributeError, LookupError, RecursionError) as err:
        raise DataError(f"not a pickle of plain data ({type(err).__name__}: {err})") from err


def _evaluate(blob: bytes):
    stack, memo, marks = [], {}, []  # marks: where each open MARK sits on the stack

    def pop_mark():
        if not marks:
            raise ValueError("a mark-taking opcode without a MARK")
        i = marks.pop()
        items = stack[i:]
        del stack[i:]
        return items

    for op, arg, _ in pickletools.genops(blob):
        name = op.name
        if name in ("PROTO", "FRAME", "STOP"):
            continue
        if name == "MARK":
            marks.append(len(stack))
        elif name in _LITERALS:
            stack.append(_LITERALS[name])
        elif name in _ARG_OPS:
            stack.append(arg)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_TUPLE"):
            stack.append({"EMPTY_LIST": list, "EMPTY_DICT": dict, "EMPTY_TUPLE": tuple}[name]())
        elif name in ("LIST", "TUPLE", "DICT", "FROZENSET"):
            items = pop_mark()
            stack.append(dict(zip(items[::2], items[1::2])) if name == "DICT" else
                         list(items) if name == "LIST" else tuple(items))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name == "APPEND":
            value = stack.pop()
            _add(stack[-1], [value])
        elif name == "APPENDS":
            items = pop_mark()
            _add(stack[-1], items)
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            _set(stack[-1], {key: value})
        elif name == "SETITEMS":
            items = pop_mark()
            _set(stack[-1], dict(zip(items[::2], items[1::2])))
        elif name in ("GLOBAL", "STACK_GLOBAL", "INST"):
            if name == "STACK_GLOBAL":
                qualname, module = stack.pop(), stack.pop()
                arg = f"{module} {qualname}"
            stack.append(Call(str(arg), tuple(pop_mark()) if name == "INST" else ()))
        elif name in ("REDUCE", "NEWOBJ"):
            args, func = stack.pop(), stack.pop()
            name = func.name if isinstance(func, Call) else repr(func)
            stack.append(_PURE[name](*args) if name in _PURE and _plain(args) else Call(name, args))
        elif name == "NEWOBJ_EX":
            _, args, cls = stack.pop(), stack.pop(), stack.pop()
            stack.append(Call(cls.name if isinstance(cls, Call) else repr(cls), args))
        elif name == "BUILD":
            state = stack.pop()
            if isinstance(stack[-1], Call):
                stack[-1].state = state
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            pop_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        else:
            raise ValueError(f"unsupported pickle opcode {name}")
        if marks and marks[-1] > len(stack):  # an opcode popped below an open MARK
            raise ValueError(f"{name} popped past a MARK")
    return stack[-1]


# Constructors of plain data that protocols 0-2 spell as calls (bytes as _codecs.encode(text,
# "latin1"), sets, bytes()); they run on strings/lists only, so nothing the file names is called.
_PURE = {"_codecs encode": lambda text="", encoding="latin1": text.encode(encoding),
         "__builtin__ bytes": bytes, "builtins bytes": bytes, "builtins bytearray": bytearray,
         "__builtin__ set": set, "builtins set": set, "builtins frozenset": frozenset}


def _plain(args) -> bool:
    """Arguments the pure constructors may run on: strings and sequences, whose size the stream
    paid for. Never a number: ``bytes(10**12)`` from a 30-byte stream would allocate a terabyte."""
    return isinstance(args, tuple) and all(isinstance(a, (str, bytes, list, tuple)) for a in args)


_LITERALS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_ARG_OPS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "STRING",
            "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE", "BINUNICODE",
            "SHORT_BINUNICODE", "BINUNICODE8", "BYTEARRAY8"}


def _add(target, items) -> None:
    (target.items if isinstance(target, Call) else target).extend(items)


def _set(target, entries: dict) -> None:
    if isinstance(target, Call):  # a dict subclass (Bunch) built by REDUCE: its items become its state
        if not isinstance(target.state, dict):
            target.state = {}
        target.state.update(entries)  # in place: copying per SETITEM was quadratic
    else:
        target.update(entries)


def _dict_of(value):
    """The items of a pickled dict or dict subclass: the dict itself, the state set on it, or (a
    Python 2 ``copy_reg._reconstructor(cls, dict, items)`` call, as in gensim's file) its argument."""
    if isinstance(value, dict) or not isinstance(value, Call):
        return value
    if isinstance(value.state, dict):
        return value.state
    return next((arg for arg in value.args if isinstance(arg, dict)), None)


def _text(value) -> str:
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)


def _int64_array(value, path: Path) -> np.ndarray:
    """A pickled 1-D int64 NumPy array read from its BUILD state ``(version, shape, dtype, fortran,
    raw data)``; the raw data is latin-1 text in Python 2 pickles, bytes otherwise."""
    state = value.state if isinstance(value, Call) else None
    if not (isinstance(state, tuple) and len(state) == 5):
        raise DataError(f"{path}: `target` is not a pickled NumPy array.")
    _, shape, dtype, _, raw = state
    blob = raw.encode("latin-1") if isinstance(raw, str) else bytes(raw)
    order = dtype.state[1] if isinstance(dtype, Call) and isinstance(dtype.state, tuple) else "<"
    kind = dtype.args[0] if isinstance(dtype, Call) and dtype.args else "i8"
    if kind not in ("i8", "int64") or len(blob) != 8 * int(np.prod(shape)):
        raise DataError(f"{path}: `target` is a {kind} array of shape {shape}, expected int64 labels.")
    return np.frombuffer(blob, dtype=f"{'>' if order == '>' else '<'}i8").astype(np.int64).reshape(-1)
