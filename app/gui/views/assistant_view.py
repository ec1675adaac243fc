"""The Assistant: chats on the side, a streamed reply with Stop, the memories each reply used."""
from __future__ import annotations

import html
import re
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QPlainTextEdit, QPushButton, QScrollArea, QSizePolicy,
                               QSplitter, QVBoxLayout, QWidget)

from engine.assistant.answer import NO_MEMORY
from engine.assistant.chat import ChatReply, Conversation, Remembered
from engine.assistant.context import format_memory

from ..assistant_controller import LLM_ERROR, LLM_LOADING, LLM_READY, AssistantController
from ..engine_bridge import EngineBridge

FLUSH_MS = 40  # streamed pieces are shown at most this often (keeps the event loop free)
STRIP_CHARS = 48
STRIP_SHOWN = 4  # memories listed under a reply before "N more"
HINT = ("Ask anything. Loci answers with the local model on this computer and shows which of your "
        "memories each reply used. What you say here is remembered for later chats, unless you "
        "switch on \u201cDon't remember this chat\u201d.")


class _Input(QPlainTextEdit):
    """Enter sends, Shift+Enter starts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and \
                not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class ModelLabel(QLabel):
    """The model line on one line: its prefix goes first, then the middle of the model's name, so the
    name's start and where it runs stay readable; the whole text is in the tooltip and the
    accessible name."""

    PREFIX = "Language model: "

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._prefix, self._name, self._suffix = "", "", ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def set_model(self, name: str, suffix: str = "", prefix: str = PREFIX) -> None:
        """Show `prefix + name + suffix`, e.g. "Language model: " "SmolLM2-135M" " · CPU"."""
        self._prefix, self._name, self._suffix = prefix, name, suffix
        self.setAccessibleName(self.full_text())
        self.updateGeometry()
        self._fit()

    def full_text(self) -> str:
        return self._prefix + self._name + self._suffix

    def sizeHint(self) -> QSize:
        margins = self.contentsMargins()
        return QSize(self.fontMetrics().horizontalAdvance(self.full_text()) + margins.left() + margins.right() + 2,
                     super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(min(self.sizeHint().width(), 8 * self.fontMetrics().averageCharWidth()),
                     super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        metrics = self.fontMetrics()
        room = self.contentsRect().width() - 2
        text = self.full_text()
        if metrics.horizontalAdvance(text) > room:
            text = self._name + self._suffix  # the tooltip still says what it is
        if metrics.horizontalAdvance(text) > room:
            keep = room - metrics.horizontalAdvance(self._suffix)
            name = metrics.elidedText(self._name, Qt.TextElideMode.ElideMiddle, keep) if keep > 0 else ""
            text = name + self._suffix if name else \
                metrics.elidedText(self._name + self._suffix, Qt.TextElideMode.ElideRight, room)
        if text != self.text():
            self.setText(text)


class MessageBubble(QFrame):
    """One message; an assistant reply also shows the memories it used and what was remembered."""

    memory_clicked = Signal(str)
    forget_clicked = Signal(object)  # the bubble

    def __init__(self, role: str, text: str = "", parent: Any = None) -> None:
        super().__init__(parent)
        self.role = role
        self.reply: ChatReply | None = None
        self.remembered_ids: tuple[str, ...] = ()
        self.setObjectName("userBubble" if role == "user" else "assistantBubble")
        self.text_label = QLabel(text)
        self.text_label.setWordWrap(True)
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_label.setAccessibleName("You said" if role == "user" else "Loci replied")
        self.text_label.linkActivated.connect(self.memory_clicked)  # a [n] citation
        self._plain = text
        self.draft_label = QLabel()  # the model's own reply when it was not supported, parts marked
        self.draft_label.setObjectName("draftNote")
        self.draft_label.setWordWrap(True)
        self.draft_label.setTextFormat(Qt.TextFormat.RichText)
        self.draft_label.hide()
        self.memories_label = QLabel()
        self.memories_label.setObjectName("memoriesStrip")
        self.memories_label.setWordWrap(True)
        self.memories_label.setTextFormat(Qt.TextFormat.RichText)
        self.memories_label.linkActivated.connect(self._strip_link)
        self.memories_label.hide()
        self.remembered_label = QLabel()
        self.remembered_label.setObjectName("rememberedNote")
        self.remembered_label.setWordWrap(True)
        self.remembered_label.setTextFormat(Qt.TextFormat.RichText)
        self.remembered_label.linkActivated.connect(lambda _link: self.forget_clicked.emit(self))
        self.remembered_label.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(4)
        layout.addWidget(self.text_label)
        layout.addWidget(self.draft_label)
        layout.addWidget(self.memories_label)
        layout.addWidget(self.remembered_label)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    @property
    def text(self) -> str:
        """The text shown, without markup."""
        return self._plain

    def set_text(self, text: str) -> None:
        self._plain = text
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setText(text)

    def show_reply(self, reply: ChatReply) -> None:
        """The finished reply: its text with clickable [n] citations, a stop mark, the memories it
        was given, and, when the model's own reply was not supported, that reply with its
        unsupported parts marked."""
        self.reply = reply
        plain = (reply.text + ("  [stopped]" if reply.cancelled else "") if reply.text else
                 "[stopped before the first word]" if reply.cancelled else "[no reply]")
        self._plain = plain
        numbered = {n: r.id for n, r in enumerate(reply.memories, start=1)}
        body = _CITE.sub(lambda m: (f"<a href='{html.escape(numbered[int(m[1])])}'>[{m[1]}]</a>"
                                    if int(m[1]) in numbered else m[0]), html.escape(plain))
        if reply.cited_ids and reply.supported and not reply.draft:
            body += " <span style='color:#2e7d32' title='Every part of this reply is in the cited memories'>" \
                    "\u2713</span>"
        self.text_label.setTextFormat(Qt.TextFormat.RichText)
        self.text_label.setText(body)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        if reply.draft:
            self.draft_label.setText(_marked_draft(reply))
            self.draft_label.setToolTip("The model's reply said things your memories do not: those parts "
                                        "are struck through, and Loci shows what the memories say instead.")
            self.draft_label.show()
        self._show_strip(expanded=False)
        self.memories_label.show()

    def _show_strip(self, expanded: bool) -> None:
        memories = self.reply.memories if self.reply is not None else ()
        if not memories:
            self.memories_label.setText("<span style='color:gray'>No memories were used for this reply.</span>")
            return
        if self.reply is not None and self.reply.text == NO_MEMORY:
            self.memories_label.setText(f"<span style='color:gray'>Looked at {len(memories)} memor"
                                        f"{'y' if len(memories) == 1 else 'ies'}; none was about this.</span>")
            self.memories_label.setToolTip("\n".join(format_memory(r) for r in memories))
            return
        shown = memories if expanded else memories[:STRIP_SHOWN]
        cited = set(self.reply.cited_ids) if self.reply is not None else set()
        links = " · ".join(f"[{n}] <a href='{html.escape(r.id)}'>" + (f"<b>{html.escape(_short(format_memory(r)))}</b>"
                           if r.id in cited else html.escape(_short(format_memory(r)))) + "</a>"
                           for n, r in enumerate(shown, start=1))
        if len(shown) < len(memories):
            links += f" · <a href='more:'>{len(memories) - len(shown)} more…</a>"
        self.memories_label.setText(f"<span style='color:gray'>Memories used ({len(memories)}):</span> {links}")
        self.memories_label.setToolTip("\n".join(format_memory(r) for r in memories))

    def _strip_link(self, link: str) -> None:
        if link == "more:":
            self._show_strip(expanded=True)
        else:
            self.memory_clicked.emit(link)

    def show_remembered(self, got: Remembered) -> None:
        self.remembered_ids = got.all_ids
        if not got.all_ids:
            return
        said = "; ".join(f"\u201c{html.escape(_short(t))}\u201d" for t in got.texts)
        self.remembered_label.setText(f"<span style='color:#2e7d32'>Remembered:</span> {said} "
                                      "&nbsp;<a href='forget'>Forget that</a>")
        self.remembered_label.show()

    def show_forgotten(self, n: int) -> None:
        self.remembered_ids = ()
        self.remembered_label.setText(f"<span style='color:gray'>Forgotten ({n}).</span>")

    def show_note(self, text: str) -> None:
        self.remembered_label.setText(f"<span style='color:#b3261e'>{html.escape(text)}</span>")
        self.remembered_label.show()


class AssistantView(QWidget):
    """memory_activated(id) when a memory of the "memories used" strip is clicked."""

    memory_activated = Signal(str)
    reply_shown = Signal()  # a reply finished and is on screen (tests, screenshots)
    remembered_shown = Signal()

    def __init__(self, bridge: EngineBridge, parent: Any = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.controller = AssistantController(bridge, self)
        self.conversation = Conversation(user_id="default")
        self._chats: dict[str, Conversation] = {}
        self._bubbles: dict[int, MessageBubble] = {}  # id(ChatReply) -> its bubble
        self._streaming: MessageBubble | None = None
        self._buffer: list[str] = []
        self._flush_timer = QTimer(self, singleShot=True, interval=FLUSH_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._build()
        self._connect()
        self._show_conversation(self.conversation)

    # -- construction --------------------------------------------------------------
    def _build(self) -> None:
        self.new_button = QPushButton("New chat")
        self.new_button.setToolTip("Start a new conversation (Ctrl+Shift+N)")
        self.chat_list = QListWidget()
        self.chat_list.setAccessibleName("Conversations")
        # a narrow list elides long titles (whole in the tooltip) instead of scrolling sideways
        self.chat_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chat_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.new_button)
        lv.addWidget(self.chat_list, 1)

        self.user_box = QComboBox(editable=True)
        self.user_box.setToolTip("Whose memories the assistant uses and adds to")
        self.user_box.setMinimumWidth(120)
        self.user_box.addItem("default")
        self.model_label = ModelLabel()
        self.model_label.setObjectName("llmState")
        self.model_label.set_model("not loaded")
        # the model's line sits beside "Chat as" when it fits there whole, else on a line of its own
        self.header = QHBoxLayout()
        self.chat_as_label = QLabel("Chat as")
        self.header.addWidget(self.chat_as_label)
        self.header.addWidget(self.user_box)
        self.header.addStretch(1)
        self.model_row = QHBoxLayout()
        self.model_row.addWidget(self.model_label, 1)

        self.transcript = QWidget()
        self.transcript_layout = QVBoxLayout(self.transcript)
        self.transcript_layout.setSpacing(8)
        self.transcript_layout.addStretch(1)
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("color: gray; padding: 24px")
        self.transcript_layout.addWidget(self.hint)
        self.transcript_scroll = QScrollArea()
        self.transcript_scroll.setWidgetResizable(True)
        self.transcript_scroll.setWidget(self.transcript)
        self.transcript_scroll.verticalScrollBar().rangeChanged.connect(
            lambda _lo, hi: self.transcript_scroll.verticalScrollBar().setValue(hi))

        self.incognito = QCheckBox("Don't remember this chat")
        self.incognito.setToolTip("An incognito chat: nothing said in it is stored, now or later")
        self.input = _Input()
        self.input.setAccessibleName("Message")
        self.input.setPlaceholderText("Message Loci (Enter sends, Shift+Enter for a new line)")
        self.input.setMaximumHeight(84)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the reply (Esc)")
        self.stop_button.setEnabled(False)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        row.addLayout(buttons)

        right = self.chat_pane = QWidget()
        right.installEventFilter(self)  # resized: place the model's line
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addLayout(self.header)
        rv.addLayout(self.model_row)
        rv.addWidget(self.transcript_scroll, 1)
        rv.addWidget(self.incognito)
        rv.addLayout(row)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([190, 700])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.splitter)
        self.setStyleSheet(
            "#userBubble { background: #e3eefc; border-radius: 8px; margin-left: 80px; }"
            "#assistantBubble { background: palette(alternate-base); border: 1px solid palette(mid);"
            " border-radius: 8px; margin-right: 80px; }"
            "#memoriesStrip, #rememberedNote, #draftNote { font-size: 11px; }")

    def _connect(self) -> None:
        c = self.controller
        c.model_state_changed.connect(self._model_state)
        c.token_received.connect(self._piece)
        c.reply_finished.connect(self._finished)
        c.reply_failed.connect(self._failed)
        c.remembered.connect(self._remembered)
        c.remember_failed.connect(self._remember_failed)
        c.conversations_loaded.connect(self._conversations_loaded)
        self.input.submitted.connect(self.send)
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop)
        self.new_button.clicked.connect(self.new_chat)
        self.chat_list.currentItemChanged.connect(self._chat_selected)
        self.incognito.toggled.connect(self._incognito_toggled)
        self.user_box.activated.connect(lambda _i: self.set_user(self.user_box.currentText()))
        editor = self.user_box.lineEdit()
        if editor is not None:
            editor.editingFinished.connect(lambda: self.set_user(self.user_box.currentText()))
        self.bridge.store_opened.connect(self._store_opened)
        self.bridge.store_changed.connect(self._store_changed)
        if self.bridge.is_open:
            QTimer.singleShot(0, self, self._store_opened)  # not called once the view is gone

    # -- store and model -------------------------------------------------------------
    def _store_opened(self) -> None:
        if self.bridge.user_counts(self._users_read) is None:
            return
        self.controller.load_model()

    def _store_changed(self) -> None:
        """An untouched chat follows the store: after the first import it is with the user it brought."""
        if not self.conversation.turns and not self.controller.is_streaming:
            self.bridge.user_counts(self._users_read)

    def _users_read(self, counts: dict[str, int]) -> None:
        """The store's users are known: pick whom to chat as and list their chats."""
        current = self.conversation.user_id
        if current not in counts and counts and not self.conversation.turns:
            # an untouched chat as a user with no memories: chat as the store's main user instead
            current = max(counts, key=lambda u: (counts[u], u))
            self.conversation = Conversation(user_id=current, remember=not self.incognito.isChecked())
        self.user_box.blockSignals(True)
        self.user_box.clear()
        self.user_box.addItems(sorted(set(counts) | {current}))
        self.user_box.setCurrentText(current)
        self.user_box.blockSignals(False)
        self.controller.load_conversations(current)

    def _model_state(self, state: str, detail: str) -> None:
        if state == LLM_READY:
            name, dot, device = detail.rpartition(" · ")  # "SmolLM2-135M-Instruct.Q4_1 · CPU"
            self.model_label.set_model(name or device, dot + device if name else "")
        else:
            self.model_label.set_model({LLM_LOADING: "loading…", LLM_ERROR: "error"}.get(state, "not loaded"))
        what = "The local GGUF model that writes replies (change it in Settings)"
        self.model_label.setToolTip(detail if state == LLM_ERROR else
                                    f"{self.model_label.full_text()}\n{what}")
        self._place_model_label()
        if state == LLM_ERROR and detail:
            self.bridge.messages.error(detail)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.chat_pane and event.type() == QEvent.Type.Resize:
            self._place_model_label()
        return super().eventFilter(watched, event)

    def _place_model_label(self) -> None:
        """Beside "Chat as" when the whole line fits there, else on its own line below it."""
        header = self.header
        used = sum(max(w.sizeHint().width(), w.minimumWidth()) for w in (self.chat_as_label, self.user_box))
        used += 3 * max(header.spacing(), 6) + 24  # and a little air before the model's name
        beside = used + self.model_label.sizeHint().width() <= self.chat_pane.width()
        if beside == (header.indexOf(self.model_label) >= 0):
            return
        if beside:
            self.model_row.removeWidget(self.model_label)
            header.addWidget(self.model_label)
            self.model_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        else:
            header.removeWidget(self.model_label)
            self.model_row.addWidget(self.model_label, 1)
            self.model_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

    # -- conversations ----------------------------------------------------------------
    def set_user(self, user_id: str) -> None:
        """Chat as another user: a new chat, and that user's earlier chats on the side."""
        user_id = user_id.strip()
        if not user_id or user_id == self.conversation.user_id:
            return
        if self.user_box.currentText() != user_id:
            self.user_box.setCurrentText(user_id)
        if self.controller.is_streaming:
            self.user_box.setCurrentText(self.conversation.user_id)
            return
        self._chats.clear()
        self.chat_list.clear()
        self.conversation = Conversation(user_id=user_id, remember=not self.incognito.isChecked())
        self._show_conversation(self.conversation)
        self.controller.load_conversations(user_id)

    def new_chat(self) -> None:
        if self.controller.is_streaming:
            return
        if not self.conversation.turns:
            self.conversation.remember = not self.incognito.isChecked()
            self._show_conversation(self.conversation)
            return
        self.conversation = Conversation(user_id=self.conversation.user_id)
        self._show_conversation(self.conversation)
        self.input.setFocus()

    def _conversations_loaded(self, user_id: str, convs: list[Conversation]) -> None:
        if user_id != self.conversation.user_id:
            return
        for conv in convs:
            if conv.id not in self._chats:
                self._chats[conv.id] = conv
        self._fill_list()

    def _fill_list(self) -> None:
        self.chat_list.blockSignals(True)
        self.chat_list.clear()
        chats = sorted(self._chats.values(), key=lambda c: c.turns[0].timestamp if c.turns else 0,
                       reverse=True)
        for conv in chats:
            item = QListWidgetItem(conv.title + ("" if conv.remember else "  (not remembered)"))
            item.setData(Qt.ItemDataRole.UserRole, conv.id)
            item.setToolTip(f"{conv.title}\n{len(conv.turns)} messages · session {conv.id}")
            self.chat_list.addItem(item)
            if conv.id == self.conversation.id:
                self.chat_list.setCurrentItem(item)
        self.chat_list.blockSignals(False)

    def _chat_selected(self, item: QListWidgetItem | None, _previous: Any) -> None:
        if item is None or self.controller.is_streaming:
            return
        conv = self._chats.get(item.data(Qt.ItemDataRole.UserRole))
        if conv is not None and conv is not self.conversation:
            self.conversation = conv
            self._show_conversation(conv)

    def _show_conversation(self, conv: Conversation) -> None:
        while self.transcript_layout.count() > 2:  # keep the stretch and the hint
            item = self.transcript_layout.takeAt(2)
            w = item.widget() if item is not None else None
            if w is not None:
                w.deleteLater()
        self._bubbles.clear()
        for turn in conv.turns:
            self._add_bubble(turn.role, turn.content)
        self.hint.setVisible(not conv.turns)
        self.incognito.blockSignals(True)
        self.incognito.setChecked(not conv.remember)
        self.incognito.setEnabled(conv.remember or not conv.turns)
        self.incognito.blockSignals(False)

    def _incognito_toggled(self, on: bool) -> None:
        self.conversation.remember = not on
        if self.conversation.id in self._chats:
            self._fill_list()

    # -- a turn ----------------------------------------------------------------------
    def _add_bubble(self, role: str, text: str) -> MessageBubble:
        bubble = MessageBubble(role, text)
        bubble.memory_clicked.connect(self.memory_activated)
        bubble.forget_clicked.connect(self._forget)
        self.transcript_layout.addWidget(bubble)
        self.hint.hide()
        return bubble

    def send(self) -> None:
        text = self.input.toPlainText().strip()
        if not text or self.controller.is_streaming:
            return
        conv = self.conversation
        if not self.controller.send(conv, text):
            self.bridge.messages.error("The memory store is not open yet; wait a moment and send again.")
            return
        self.input.clear()
        self._add_bubble("user", text)
        self._streaming = self._add_bubble("assistant", "…")
        self._buffer = []
        self.send_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.new_button.setEnabled(False)
        self.incognito.setEnabled(False)
        if conv.id not in self._chats:
            self._chats[conv.id] = conv

    def stop(self) -> None:
        self.controller.stop()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.controller.is_streaming:
            self.stop()
            return
        super().keyPressEvent(event)

    def _piece(self, piece: str) -> None:
        self._buffer.append(piece)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush(self) -> None:
        if self._streaming is not None and self._buffer:
            self._streaming.set_text("".join(self._buffer).lstrip())

    def _finished(self, conv: Conversation, reply: ChatReply) -> None:
        self._flush_timer.stop()
        bubble = self._streaming
        self._streaming = None
        self._idle()
        if bubble is None or conv is not self.conversation:
            return
        bubble.show_reply(reply)
        self._bubbles[id(reply)] = bubble
        self._fill_list()
        self.reply_shown.emit()

    def _failed(self, text: str) -> None:
        self._flush_timer.stop()
        if self._streaming is not None:
            self._streaming.set_text("[no reply]")
            self._streaming.show_note(text)
        self._streaming = None
        self._idle()

    def _idle(self) -> None:
        self.send_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.new_button.setEnabled(True)
        self.incognito.setEnabled(self.conversation.remember)
        self.input.setFocus()

    def _bubble_of(self, reply: ChatReply) -> MessageBubble | None:
        return self._bubbles.get(id(reply))

    def _remember_failed(self, reply: ChatReply, text: str) -> None:
        bubble = self._bubble_of(reply)
        if bubble is not None:
            bubble.show_note(text)

    def _remembered(self, reply: ChatReply, got: Remembered) -> None:
        bubble = self._bubble_of(reply)
        if bubble is not None:
            bubble.show_remembered(got)
        self.remembered_shown.emit()

    def _forget(self, bubble: MessageBubble) -> None:
        ids = bubble.remembered_ids
        if ids:
            self.controller.forget(ids, on_done=bubble.show_forgotten)

    def close_chat(self) -> None:
        """Stop a reply and finish storing exchanges (call before the store closes)."""
        self.controller.close()


_CITE = re.compile(r"\[(\d{1,3})\]")


def _marked_draft(reply: ChatReply) -> str:
    """The model's unsupported reply, claim by claim: supported parts as they are, the words found in
    no memory struck through in red."""
    parts: list[str] = []
    for claim in reply.claims:
        text = html.escape(claim.text)
        for word in sorted(claim.unsupported, key=len, reverse=True):
            text = re.sub(rf"(?<![\w>]){re.escape(html.escape(word))}(?!\w)",
                          f"<s style='color:#b3261e'>{html.escape(word)}</s>", text)
        parts.append(text if claim.supported else f"<span style='color:gray'>{text}</span>")
    return ("<span style='color:#b3261e'>Not shown as fact: the model's reply said things your memories "
            "don't (struck through):</span> " + " ".join(parts))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= STRIP_CHARS else text[:STRIP_CHARS - 1] + "…"
