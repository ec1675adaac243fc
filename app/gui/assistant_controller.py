"""Runs the engine's Assistant off the event loop: one chat turn at a time, streamed, cancellable."""
from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any, Callable, Sequence

from PySide6.QtCore import QObject, QThreadPool, Signal

from engine import CancelToken, LociError, StoreError
from engine.assistant.chat import Assistant, ChatReply, Conversation

from .engine_bridge import EngineBridge

log = logging.getLogger(__name__)

LLM_NOT_LOADED, LLM_LOADING, LLM_READY, LLM_ERROR = "not loaded", "loading", "ready", "error"


class _Relay(QObject):
    """Signals a worker or the engine's background thread fires; delivered on the GUI thread."""

    piece = Signal(str)
    remembered = Signal(object, object)  # ChatReply, Future[Remembered]


class AssistantController(QObject):
    """The GUI's chat: owns the engine Assistant, a one-thread pool for turns and the cancel token."""

    model_state_changed = Signal(str, str)  # state, detail ("SmolLM2 · CPU" or the error)
    token_received = Signal(str)
    reply_finished = Signal(object, object)  # Conversation, ChatReply
    reply_failed = Signal(str)
    remembered = Signal(object, object)  # ChatReply, Remembered
    remember_failed = Signal(object, str)  # ChatReply, message
    conversations_loaded = Signal(str, object)  # user_id, list[Conversation]

    def __init__(self, bridge: EngineBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model_state = LLM_NOT_LOADED
        self.model_detail = ""
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one reply at a time (one llama.cpp model per process)
        self._assistant: Assistant | None = None
        self._token: CancelToken | None = None
        self._relay = _Relay(self)
        self._relay.piece.connect(self.token_received)
        self._relay.remembered.connect(self._remembered)

    @property
    def is_streaming(self) -> bool:
        return self._token is not None

    def assistant(self) -> Assistant:
        memory = self.bridge.memory
        if memory is None:
            raise StoreError("No memory store is open yet; wait for it to open or pick a data folder "
                             "in Settings.")
        if self._assistant is None or self._assistant.memory is not memory:
            if self._assistant is not None:
                self._assistant.close()
            self._assistant = Assistant(memory)
        return self._assistant

    # -- the model -----------------------------------------------------------------
    def load_model(self) -> None:
        """Load the language model in the background (once; later calls just report it)."""
        if not self.bridge.is_open or self.model_state == LLM_LOADING:
            return
        assistant = self.assistant()
        self._set_state(LLM_LOADING, "")

        def load() -> Any:
            return assistant.llm.info

        self.bridge.submit(load, on_result=self._loaded, on_failed=lambda t: self._set_state(LLM_ERROR, t),
                           pool=self.pool, name="load language model")

    def _loaded(self, info: Any) -> None:
        self._set_state(LLM_READY, f"{info.key.path.stem} · {info.device}")

    def _set_state(self, state: str, detail: str) -> None:
        self.model_state, self.model_detail = state, detail
        self.model_state_changed.emit(state, detail)

    # -- a turn --------------------------------------------------------------------
    def send(self, conversation: Conversation, text: str) -> bool:
        """Start a reply in the background; False when one is already running or no store is open."""
        if self._token is not None or not self.bridge.is_open or not text.strip():
            return False
        assistant = self.assistant()
        token = CancelToken()
        self._token = token
        if self.model_state != LLM_READY:
            self._set_state(LLM_LOADING, "")

        def run() -> tuple[ChatReply, Any]:
            reply = assistant.chat(conversation, text, on_token=self._relay.piece.emit, cancel=token)
            return reply, assistant.llm.info  # the model that replied

        def done(result: tuple[ChatReply, Any]) -> None:
            reply, info = result
            self._token = None
            self._loaded(info)
            # the reply first: storing it may be done already, and its note goes under the shown reply
            self.reply_finished.emit(conversation, reply)
            if reply.remembered is not None:
                def relay(future: Future[Any], r: ChatReply = reply) -> None:
                    self._relay.remembered.emit(r, future)

                reply.remembered.add_done_callback(relay)

        def failed(text_: str) -> None:
            self._token = None
            if self.model_state == LLM_LOADING:
                self._set_state(LLM_ERROR, text_)
            self.reply_failed.emit(text_)

        self.bridge.submit(run, on_result=done, on_failed=failed, pool=self.pool, name="chat reply")
        return True

    def stop(self) -> None:
        """Stop the reply being written (it keeps what was written so far)."""
        if self._token is not None:
            self._token.cancel()

    def _remembered(self, reply: ChatReply, future: Future) -> None:
        try:
            got = future.result()
        except LociError as exc:
            self.remember_failed.emit(reply, exc.user_message)
            return
        except Exception as exc:  # noqa: BLE001 - a bug in the background add: shown, logged
            log.exception("storing a chat exchange failed")
            self.remember_failed.emit(reply, f"Something went wrong while remembering: {exc}")
            return
        if got.all_ids:
            self.bridge.store_changed.emit()  # the browser shows the new memories
        self.remembered.emit(reply, got)

    # -- around the turns ----------------------------------------------------------------
    def forget(self, memory_ids: Sequence[str], on_done: Callable[[int], None] | None = None) -> None:
        """Delete memories (the "forget that" link); the browser refreshes."""
        assistant = self.assistant()

        def done(n: int) -> None:
            self.bridge.store_changed.emit()
            self.bridge.messages.info(f"Forgot {n} memor{'y' if n == 1 else 'ies'}.")
            if on_done is not None:
                on_done(n)

        self.bridge.submit(lambda: assistant.forget(memory_ids), on_result=done, pool=self.bridge.write_pool,
                           name="forget")

    def load_conversations(self, user_id: str) -> None:
        """Earlier remembered chats of a user, read in the background."""
        if not self.bridge.is_open:
            return
        assistant = self.assistant()
        self.bridge.submit(lambda: assistant.conversations(user_id),
                           on_result=lambda convs: self.conversations_loaded.emit(user_id, convs),
                           name="list chats")

    def close(self) -> None:
        """Stop a running reply, wait for it and for pending adds (before the store closes)."""
        self.stop()
        self.pool.waitForDone(30_000)
        if self._assistant is not None:
            self._assistant.close()
            self._assistant = None
