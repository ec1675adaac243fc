"""`loci chat` (a terminal chat with the assistant that remembers) and `loci models`."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from concurrent.futures import Future, wait
from dataclasses import dataclass, field, replace
from typing import Any, Callable, TextIO

REMEMBER_WAIT_S = 3.0  # how long the next prompt waits for the last exchange to be stored

HELP = """Commands:
  /memories     the memories the last reply was given, and what was remembered from it
  /forget N     forget memory N of that list
  /new          start a new chat
  /model PATH   use another GGUF model (a file, or a name from 'loci models') from the next reply
  /help         this help
  /quit         leave (Ctrl-D too)
Ctrl-C stops a reply that is being written."""


def add_arguments(chat: argparse.ArgumentParser, models: argparse.ArgumentParser) -> None:
    """The options of `loci chat` and `loci models` (the subparsers are made in app/cli.py)."""
    chat.add_argument("--user", dest="user_id", default="default", help="whose memories (default: default)")
    chat.add_argument("--model", help="a GGUF file, or a model name from 'loci models'")
    chat.add_argument("--no-remember", action="store_true", help="incognito: store nothing from this chat")
    chat.add_argument("--threads", type=int, help="CPU threads for the model")
    chat.add_argument("--gpu-layers", type=int, help="layers to offload to the GPU (-1: all)")
    models.add_argument("--folder", action="append", default=[], help="also search this folder")


def list_models(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from engine.inference.model_catalog import better_model_note, discover_models, human_size

    out = out or sys.stdout
    found = discover_models(extra_dirs=args.folder)
    if args.json:
        print(json.dumps([{"name": m.name, "path": str(m.path), "source": m.source, "size_bytes": m.size_bytes,
                           "quantization": m.quantization, "context_length": m.context_length,
                           "architecture": m.architecture, "parameters": m.parameters,
                           "has_chat_template": m.has_chat_template} for m in found], indent=2), file=out)
        return 0
    print(f"{'NAME':<40} {'SOURCE':<10} {'SIZE':>9} {'QUANT':<8} {'CONTEXT':>8}  PATH", file=out)
    for m in found:
        ctx = f"{m.context_length:,}" if m.context_length else "?"
        print(f"{m.name[:40]:<40} {m.source:<10} {human_size(m.size_bytes):>9} {m.quantization or '?':<8} "
              f"{ctx:>8}  {m.path}", file=out)
    print("\nUse one with: loci chat --model NAME (or pick it in the app's Settings).", file=out)
    print(better_model_note(found), file=out)
    return 0


@dataclass
class _State:
    """What the terminal chat shows about the last turn."""

    used: list[Any] = field(default_factory=list)  # MemoryRecords given to the last reply
    remembered: list[tuple[tuple[str, ...], str]] = field(default_factory=list)  # (ids, text) stored
    pending: "list[Future[Any]]" = field(default_factory=list)  # background adds not shown yet

    def items(self) -> list[tuple[tuple[str, ...], str]]:
        """What /memories lists and /forget N counts: what was remembered in this chat first (its
        numbers stay the same as the chat goes on), then the memories given to the last reply."""
        return self.remembered + [((r.id,), r.memory) for r in self.used]


def run_chat(args: argparse.Namespace, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    from engine import CancelToken, LociConfig, LociError, Memory
    from engine.assistant.chat import Assistant, Conversation
    from engine.inference.model_catalog import resolve_model
    from engine.paths import default_config_file

    try:
        config = LociConfig.load(default_config_file())
        if args.model:
            config.llm.model_path = str(resolve_model(args.model))
        if args.threads is not None:
            config.llm.n_threads = args.threads or None
        if args.gpu_layers is not None:
            config.llm.n_gpu_layers = args.gpu_layers
        mem = Memory(args.data_dir, config)
    except LociError as exc:
        print(f"loci: {exc}", file=sys.stderr)
        return 1
    stdin, out = stdin or sys.stdin, out or sys.stdout
    bot = Assistant(mem)
    remember = not args.no_remember
    conv = Conversation(user_id=args.user_id, remember=remember)
    state = _State()

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    try:
        say(f"Loci chat as '{args.user_id}' with {_model_line(mem)}. "
            + ("This chat is remembered." if remember else "Incognito: nothing of this chat is stored.")
            + " /help for commands.")
        while True:
            # the exchange is stored in the background: its announcement belongs under its own reply,
            # so the next prompt waits for it a little (it would otherwise show a turn late)
            wait(state.pending, timeout=REMEMBER_WAIT_S)
            _show_remembered(state, say)
            try:
                out.write("you> ")
                out.flush()
                line = stdin.readline()
            except KeyboardInterrupt:
                say("\n(Type /quit or press Ctrl-D to leave.)")
                continue
            if not line:
                say()
                break
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if _command(text, mem, bot, state, say) == "quit":
                    break
                if text == "/new":
                    conv = Conversation(user_id=args.user_id, remember=remember)
                    state = _State()
                continue
            token = CancelToken()
            previous = _on_interrupt(token.cancel)
            out.write("loci> ")
            out.flush()
            try:
                reply = bot.chat(conv, text, on_token=_printer(out), cancel=token)
            except LociError as exc:
                say(f"\nloci: {exc}")
                continue
            finally:
                signal.signal(signal.SIGINT, previous)
            say(" [stopped]" if reply.cancelled else "")
            _show_grounding(reply, say)
            waiting = state.pending + ([reply.remembered] if reply.remembered is not None else [])
            state = _State(used=list(reply.memories), remembered=state.remembered, pending=waiting)
            if reply.memories:
                say(f"      (used {len(reply.memories)} memor{'y' if len(reply.memories) == 1 else 'ies'}: /memories)")
    finally:
        if bot.is_busy:
            say("Saving what to remember from this chat…")
        bot.close()
        _show_remembered(state, say)  # what the last turns stored, so it can still be found and forgotten
        mem.close()
    return 0


def _show_grounding(reply: Any, say: Callable[[str], None]) -> None:
    """After a streamed reply: what was not supported (and the answer from memory instead), and the
    memories it cites, by their number in /memories."""
    from engine.assistant.context import format_memory

    if reply.draft:
        missing = [w for c in reply.claims for w in c.unsupported]
        say("      (not shown as fact: not in your memories: " + ", ".join(dict.fromkeys(missing))[:160] + ")")
        say(f"loci> {reply.text}")
    elif reply.retold:  # told as Memory.answer() shows it (third person, restated question cut)
        say(f"loci> {reply.text}")
    number = {r.id: n for n, r in enumerate(reply.memories, start=1)}
    for memory in reply.memories:
        if memory.id in reply.cited_ids:
            say(f"      [{number[memory.id]}] {format_memory(memory)}")


def _on_interrupt(handler: Callable[[], None]) -> Any:
    """Make Ctrl-C call `handler` (stop the reply) instead of leaving; returns the old handler."""
    return signal.signal(signal.SIGINT, lambda _sig, _frame: handler())


def _model_line(mem: Any) -> str:
    from engine import LociError

    try:
        llm = mem.language_model()
        info = llm.info  # loads the model now, so a bad file is reported before the first message
    except LociError as exc:
        return f"no usable model ({exc})"
    return f"{llm.path.name} on {info.device}"


def _show_remembered(state: _State, say: Callable[[str], None]) -> None:
    """Announce what the background adds that have finished stored (numbered for /forget)."""
    for future in [f for f in state.pending if f.done()]:
        state.pending.remove(future)
        try:
            got = future.result()
        except Exception as exc:  # noqa: BLE001 - the add's error is shown, the chat goes on
            say(f"      (could not remember an exchange: {exc})")
            continue
        if not got.all_ids:
            continue
        said = "; ".join(got.texts)
        state.remembered.append((got.all_ids, said))
        number = len(state.remembered)
        say(f"      (remembered: {said[:160]} — forget that: /forget {number})")


def _command(text: str, mem: Any, bot: Any, state: _State, say: Callable[[str], None]) -> str | None:
    from engine import LociError
    from engine.inference.model_catalog import resolve_model
    from engine.inference.models import check_gguf

    cmd, _, arg = text.partition(" ")
    arg = arg.strip()
    if cmd in ("/quit", "/exit"):
        return "quit"
    if cmd == "/help":
        say(HELP)
    elif cmd == "/new":
        say("New chat.")
    elif cmd == "/memories":
        for future in state.pending:
            future.exception(timeout=300)  # wait for what is still being remembered
        _show_remembered(state, say)
        items = state.items()
        if not items:
            say("The last reply was given no memories, and nothing was remembered from it.")
        for n, (_ids, memory) in enumerate(items, start=1):
            if n == 1 and state.remembered:
                say("Remembered from this chat:")
            if n == len(state.remembered) + 1:
                say("Given to the last reply:")
            say(f"  [{n}] {memory}")
    elif cmd == "/forget":
        items = state.items()
        if not arg.isdigit() or not 1 <= int(arg) <= len(items):
            say(f"Give the number of a memory from /memories (1 to {len(items)})." if items
                else "Nothing to forget: /memories is empty.")
            return None
        ids, memory = items[int(arg) - 1]
        removed = bot.forget(list(ids))
        state.used = [r for r in state.used if r.id not in ids]
        state.remembered = [x for x in state.remembered if x[0] != ids]
        say(f"Forgot: {memory}" if removed else "That memory was already gone.")
    elif cmd == "/model":
        if not arg:
            say(f"Using {_model_line(mem)}. Give a GGUF file or a name from 'loci models' to switch.")
            return None
        try:
            path = check_gguf(resolve_model(arg))
        except LociError as exc:
            say(f"loci: {exc}")
            return None
        mem.config.llm = replace(mem.config.llm, model_path=str(path))
        say(f"Switched to {_model_line(mem)}.")
    else:
        say(f"Unknown command {cmd}. /help lists the commands.")
    return None


def _printer(out: Any) -> Callable[[str], None]:
    """Write each streamed piece at once."""
    def show(piece: str) -> None:
        out.write(piece)
        out.flush()
    return show
