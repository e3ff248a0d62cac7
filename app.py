"""The chat page: `python app.py` loads the models once, then serves on 127.0.0.1:7860.

Rendering and streaming live in rag/web.py; this file is argument parsing, layout and
wiring. Gradio is imported only after the arguments parse, so `--help` stays instant."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gradio as gr

    from rag.web import Asker, TextOf

# Questions that may wait in line while the model answers another. One answer takes a few
# seconds here, so the eighth in line waits under a minute; past that, gradio tells the
# next one the app is busy rather than let the line grow without end.
MAX_QUEUE = 8

CSS = """
#chat .message-content .answer, #chat .message-content .question { line-height: 1.55; }
#chat .answer.pending { opacity: .65; font-style: italic; }
#chat .answer.streaming::after { content: "▍"; animation: blink 1s steps(1) infinite; }
@keyframes blink { 50% { opacity: 0; } }
a.cite, span.cite { font-size: .85em; font-weight: 600; padding: 0 .15em; }
a.cite { text-decoration: none; color: var(--color-accent); }
a.cite:hover { text-decoration: underline; }
.notice { border-left: 4px solid; border-radius: 6px; padding: .5em .8em; }
.notice p { margin: .25em 0 0 0; }
.notice-title { font-weight: 700; }
.notice.refusal { border-color: #d97706; background: rgba(217, 119, 6, .10); }
.notice.conflict { border-color: #7c3aed; background: rgba(124, 58, 237, .10); }
.notice.busy { border-color: #2563eb; background: rgba(37, 99, 235, .10); }
.notice.error { border-color: #dc2626; background: rgba(220, 38, 38, .10); }
/* The sides of a multi-side answer next to each other, fewer per row on a narrow screen. */
#chat .sides { display: grid; grid-template-columns: repeat(auto-fit, minmax(12em, 1fr));
  gap: .6em; margin-top: .45em; }
#chat .side { border: 1px solid var(--border-color-primary); border-radius: 6px;
  padding: .45em .6em; background: var(--background-fill-primary); min-width: 0; }
#chat .side.disputed { border-style: dashed; }
#chat .side-subject { font-size: .85em; font-weight: 700; }
#chat .side-value { font-weight: 600; overflow-wrap: anywhere; }
#chat .side-disputed { font-size: .75em; font-weight: 700; text-transform: uppercase;
  color: #b45309; border: 1px solid currentColor; border-radius: 4px; padding: 0 .3em; }
#chat .side-docs { font-family: var(--font-mono); font-size: .8em; overflow-wrap: anywhere;
  color: var(--body-text-color-subdued); }
#chat .side-source { font-size: .85em; line-height: 1.45; overflow-wrap: anywhere; }
#chat mark, #sources mark { background: #fde68a; color: #111; padding: 0 .1em;
  border-radius: 2px; }
#sources { max-height: 640px; overflow-y: auto; }
#sources-title h3 { margin: .2em 0 .4em 0; }
#sources .source { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: .6em .8em; margin-bottom: .7em; scroll-margin-top: 1em; }
#sources .source:target { outline: 3px solid var(--color-accent); }
#sources .source-head { font-size: .9em; margin-bottom: .35em; }
#sources .source-n { font-weight: 700; }
#sources .source-doc { font-family: var(--font-mono); }
#sources .source-range { color: var(--body-text-color-subdued); font-family: var(--font-mono); }
#sources .source-text { white-space: pre-wrap; font-size: .9em; line-height: 1.5; margin: 0; }
#sources .sources-empty, #sources .source-note { color: var(--body-text-color-subdued); }
/* A waiting question's place in line ("queue: 2/3 | 4.1s"), legible at a glance. */
#chat [data-testid="status-tracker"] .progress-text { font-size: var(--text-md); font-weight: 600; }
"""


STORE_HELP = (
    "where the index lives: faiss (default, the --index folder), FILE.db (embedded Milvus "
    "Lite) or http://HOST:PORT (a Milvus server, token in RAG_MILVUS_TOKEN); env RAG_STORE"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Serve the cited question-answering chat page.")
    p.add_argument("--host", help="interface to listen on (default 127.0.0.1, env RAG_HOST)")
    p.add_argument("--port", type=int, help="port (default 7860, env RAG_PORT)")
    p.add_argument("--corpus", type=Path, help="corpus folder (default: seeds/, env RAG_CORPUS)")
    p.add_argument("--index", type=Path, help="index folder (default: index/, env RAG_INDEX)")
    p.add_argument("--store", help=STORE_HELP)
    p.add_argument(
        "--model", type=Path, help="GGUF path, or 'qwen' (default) / 'smollm2' (env RAG_MODEL)"
    )
    p.add_argument(
        "--max-queue",
        type=_at_least_one,
        default=MAX_QUEUE,
        metavar="N",
        help=f"questions that may wait while one is answered (default {MAX_QUEUE}); "
        "past that, new ones are told the app is busy",
    )
    return p.parse_args(argv)


def _at_least_one(raw: str) -> int:
    # gradio's max_size=0 would turn away even the first question, which never waits.
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {raw!r}")
    return value


def build(
    asker: Asker,
    text_of: TextOf,
    max_queue: int = MAX_QUEUE,
    log: Callable[[str], None] = print,
    updating: Callable[[], str | None] = lambda: None,
) -> gr.Blocks:
    """The page: chat on the left, the sources panel on the right. Questions wait in
    gradio's queue (the page shows each its place in line) up to `max_queue` waiting."""
    import gradio as gr

    from rag import web
    from rag.errors import RagError

    def respond(question: str, history: list[web.Message]) -> Iterator[tuple[Any, ...]]:
        if not question.strip():
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        # The box is cleared only once the question runs, so a rejected one is not lost.
        messages: list[web.Message] = history
        for messages, sources in web.chat_turn(asker, text_of, question, history, log):
            yield "", messages, sources, messages
        # A corpus change is indexed in the background; answers meanwhile come from the
        # index as it was, and the reader is told so.
        note = updating()
        if note:
            said = [
                *messages,
                {"role": "assistant", "content": web.render_notice("updating", note)},
            ]
            yield "", said, gr.skip(), said

    def ask(question: str) -> dict[str, Any]:
        """Answer from the corpus with exact citations, or refuse."""
        try:
            return web.api_result(asker.ask(question))
        except RagError as exc:
            # Bad input is the caller's mistake, not the server's: one log line, no
            # traceback (gradio prints one for every gr.Error unless told not to).
            log(f"question rejected: {exc}")
            raise gr.Error(str(exc), print_exception=False) from None

    with gr.Blocks(title="Ask your documents", analytics_enabled=False) as demo:
        gr.Markdown(
            "## Ask your documents\n"
            "Answers come only from your documents, with every claim linked to the exact "
            "sentence it rests on. When the documents do not say, the assistant refuses."
        )
        history = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    elem_id="chat",
                    label="Chat",
                    height=520,
                    # Messages are HTML built by rag.web with every text html-escaped; no
                    # markdown, so model text cannot turn into links, images or LaTeX.
                    render_markdown=False,
                    sanitize_html=True,
                    latex_delimiters=[],
                    allow_tags=False,
                    buttons=[],
                    feedback_options=None,
                )
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Ask a question about your documents…",
                        show_label=False,
                        scale=5,
                        max_length=2000,
                        elem_id="question",
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
            with gr.Column(scale=2):
                gr.Markdown("### Sources", elem_id="sources-title")
                sources = gr.HTML(web.NO_SOURCES, elem_id="sources", js_on_load=None)
        # One concurrency group for the chat and the API: the model answers one at a time
        # and the others wait in line, each shown its place ("queue: 2/3") on the chat;
        # only past `max_queue` waiting does gradio answer "busy, try again". When a tab
        # closes, gradio drops its waiting question and closes its running one, which
        # stops the model (rag.web.Asker).
        for trigger in (box.submit, send.click):
            trigger(
                respond,
                [box, history],
                [box, chatbot, sources, history],
                concurrency_limit=1,
                concurrency_id="model",
                api_visibility="undocumented",
                show_progress="minimal",
                show_progress_on=chatbot,
            )
        chatbot.clear(lambda: ([], web.NO_SOURCES), None, [history, sources], queue=False)
        gr.api(ask, api_name="ask", concurrency_limit=1, concurrency_id="model")  # type: ignore[attr-defined]
    # Places in line are re-sent every second, not only when an answer finishes, so they
    # also move up when a waiting question is dropped because its tab was closed.
    demo.queue(max_size=max_queue, default_concurrency_limit=1, status_update_rate=1)
    return demo


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", flush=True)

    from rag.errors import RagError
    from rag.index import OpenIndex
    from rag.settings import load_settings
    from rag.web import Asker

    try:
        settings = load_settings(
            corpus=args.corpus,
            index=args.index,
            store=args.store,
            model=args.model,
            host=args.host,
            port=args.port,
        )
        # In the background: a corpus change never blocks answering (the index in use is
        # swapped for the updated one when it is saved).
        opened = OpenIndex(settings, log=log, background=True)
        where = settings.index if settings.store == "faiss" else settings.store
        log(f"loading the index ({where}) and models")
        opened.warm_up()
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log("models loaded; starting the web server")

    def updating() -> str | None:
        if opened.rebuilding:
            return (
                "The documents changed; the index is being updated. This answer comes "
                "from the index as it was before the change."
            )
        if opened.rebuild_error:
            return f"Updating the index failed: {opened.rebuild_error}"
        return None

    demo = build(Asker(opened), opened.text, max_queue=args.max_queue, log=log, updating=updating)
    host, port = settings.host, settings.port
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            share=False,
            ssr_mode=False,
            css=CSS,
            footer_links=["api"],
            quiet=True,
            prevent_thread_lock=True,
        )
    except OSError:
        print(
            f"error: cannot listen on {host}:{port} (is the port in use?); "
            "pass --port N or set RAG_PORT",
            file=sys.stderr,
        )
        return 2
    log(f"serving on http://{host}:{port}")
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
