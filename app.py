"""The chat page: `python app.py` loads the models once, then serves on 127.0.0.1:7860.

Rendering and streaming live in rag/web.py; this file is argument parsing, layout and
wiring. Gradio is imported only after the arguments parse, so `--help` stays instant."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gradio as gr

    from rag.web import Asker, TextOf

CSS = """
#chat .message-content .answer, #chat .message-content .question { line-height: 1.55; }
#chat .answer.pending { opacity: .65; font-style: italic; }
#chat .answer.streaming::after { content: "▍"; animation: blink 1s steps(1) infinite; }
@keyframes blink { 50% { opacity: 0; } }
a.cite, span.cite { font-size: .85em; font-weight: 600; padding: 0 .15em; }
a.cite { text-decoration: none; color: var(--color-accent); }
a.cite:hover { text-decoration: underline; }
.notice { border-left: 4px solid; border-radius: 6px; padding: .5em .8em; }
.notice p, .notice ul { margin: .25em 0 0 0; }
.notice-title { font-weight: 700; }
.notice.refusal { border-color: #d97706; background: rgba(217, 119, 6, .10); }
.notice.conflict { border-color: #7c3aed; background: rgba(124, 58, 237, .10); }
.notice.busy { border-color: #2563eb; background: rgba(37, 99, 235, .10); }
.notice.error { border-color: #dc2626; background: rgba(220, 38, 38, .10); }
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
#sources mark { background: #fde68a; color: #111; padding: 0 .1em; border-radius: 2px; }
#sources .sources-empty, #sources .source-note { color: var(--body-text-color-subdued); }
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Serve the cited question-answering chat page.")
    p.add_argument("--host", help="interface to listen on (default 127.0.0.1, env RAG_HOST)")
    p.add_argument("--port", type=int, help="port (default 7860, env RAG_PORT)")
    p.add_argument("--corpus", type=Path, help="corpus folder (default: seeds/, env RAG_CORPUS)")
    p.add_argument("--index", type=Path, help="index folder (default: index/, env RAG_INDEX)")
    p.add_argument(
        "--model", type=Path, help="GGUF path, or 'qwen' (default) / 'smollm2' (env RAG_MODEL)"
    )
    return p.parse_args(argv)


def build(asker: Asker, text_of: TextOf) -> gr.Blocks:
    """The page: chat and examples on the left, the sources panel on the right."""
    import gradio as gr

    from rag import web
    from rag.errors import RagError

    def respond(question: str, history: list[web.Message]) -> Iterator[tuple[Any, ...]]:
        if not question.strip():
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        # The box is cleared only once the question runs, so a rejected one is not lost.
        for messages, sources in web.chat_turn(asker, text_of, question, history):
            yield "", messages, sources, messages

    def ask(question: str) -> dict[str, Any]:
        """Answer from the corpus with exact citations, or refuse."""
        try:
            return web.api_result(asker.ask(question))
        except RagError as exc:
            raise gr.Error(str(exc)) from None

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
        # One concurrency group for the chat and the API: the model answers one at a time,
        # and the bounded queue turns a flood into gradio's "busy, try again" message.
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
    demo.queue(max_size=8, default_concurrency_limit=1)
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
            corpus=args.corpus, index=args.index, model=args.model, host=args.host, port=args.port
        )
        opened = OpenIndex(settings, log=log)
        log(f"loading the index ({settings.index}) and models")
        opened.warm_up()
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log("models loaded; starting the web server")
    demo = build(Asker(opened), opened.text)
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
