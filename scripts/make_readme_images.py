"""Regenerate the README's pictures of TensorBoard's projector (``docs/images/*.png``).

Writes two runs with :class:`embedding_projector.ProjectorWriter`, starts a real TensorBoard on
127.0.0.1 and photographs the projector page in headless Chromium (the same page object as
``tests/test_browser.py``):

* ``projector-vectors.png``: gensim's shipped ``lee_fasttext.vec`` (1,762 words), exported
  and shown with a word's nearest neighbours.
* ``projector-steps.png``: the tensor dropdown of a Word2Vec training run written at every
  epoch end, listing one entry per step in order.

Needs Debian's ``chromium`` (and ``fonts-noto-cjk``), Playwright, gensim and TensorBoard; works
offline. Run from the repository root::

    PYTHONPATH=src python scripts/make_readme_images.py            # writes docs/images/
    PYTHONPATH=src python scripts/make_readme_images.py --out /tmp/pictures --keep-logdir
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the page object and TensorBoard runner live there

#: The README keeps each picture under this size.
MAX_BYTES = 300_000
EPOCHS = 6
VOCABULARY = 400
VECTORS_WORD = "Arafat"


def write_vector_set(logdir: Path) -> str:
    """gensim's ``lee_fasttext.vec`` as one snapshot; returns the run name."""
    from gensim.models import KeyedVectors
    from gensim.test.utils import datapath

    from embedding_projector import ProjectorWriter

    vectors = KeyedVectors.load_word2vec_format(datapath("lee_fasttext.vec"))
    ProjectorWriter(logdir / "lee_fasttext").add_embedding(
        vectors.vectors, metadata=list(vectors.index_to_key), tag="lee_fasttext"
    )
    return "lee_fasttext"


def write_training_run(logdir: Path) -> str:
    """Word2Vec on gensim's Lee corpus, a snapshot at every epoch end; returns the run name."""
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    from embedding_projector import ProjectorWriter

    writer = ProjectorWriter(logdir / "word2vec")

    class EveryEpoch(CallbackAny2Vec):  # type: ignore[misc]
        def __init__(self) -> None:
            self.epoch = 0

        def on_epoch_end(self, model: Word2Vec) -> None:
            self.epoch += 1
            words = model.wv.index_to_key[:VOCABULARY]
            writer.add_embedding(
                model.wv.vectors[:VOCABULARY],
                metadata=list(words),
                global_step=self.epoch,
                tag="word2vec",
                name_suffix=f"epoch {self.epoch}",
            )

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        corpus = [simple_preprocess(line) for line in handle]
    Word2Vec(
        corpus,
        vector_size=32,
        min_count=3,
        epochs=EPOCHS,
        seed=1,
        workers=1,
        callbacks=[EveryEpoch()],
    )
    return "word2vec"


def save_small_png(png: bytes, path: Path) -> int:
    """Save a screenshot as a palette PNG (README pictures stay small); returns its size."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = 256
    while True:
        buffer = io.BytesIO()
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(
            buffer, format="PNG", optimize=True
        )
        if buffer.tell() <= MAX_BYTES or colours <= 32:
            break
        colours //= 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.tell()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--keep-logdir", action="store_true", help="print and keep the log dir")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from browser_page import VIEWPORT, OfflineGuard, ProjectorPage, launch_chromium
    from tb_server import TensorBoard

    workdir = Path(tempfile.mkdtemp(prefix="readme-images-"))
    logdir = workdir / "logs"
    try:
        vectors_run = write_vector_set(logdir)
        training_run = write_training_run(logdir)
        with TensorBoard(logdir) as server, sync_playwright() as playwright:
            server.wait_for(lambda: {vectors_run, training_run} <= set(server.runs()), 60)
            browser = launch_chromium(playwright)
            context = browser.new_context(viewport=VIEWPORT)
            guard = OfflineGuard()
            guard.install(context)
            page = ProjectorPage(context.new_page(), server.base)
            page.open()

            page.select_run(vectors_run)
            page.select_tensor(page.shown_tensors()[0], 1762, 10)
            page.search_finds_one(VECTORS_WORD, exact=True)
            page.wait_for(lambda s: s["selected"], "the word to be selected")
            shot = page.page.screenshot()
            size = save_small_png(shot, args.out / "projector-vectors.png")
            print(f"{args.out / 'projector-vectors.png'}: {size} bytes")

            page.select_run(training_run)
            names = page.shown_tensors()
            last = names[-1]
            page.select_tensor(last, VOCABULARY, 32)
            page.open_tensor_dropdown()
            shot = page.page.screenshot()
            size = save_small_png(shot, args.out / "projector-steps.png")
            print(f"{args.out / 'projector-steps.png'}: {size} bytes ({len(names)} steps)")
            browser.close()
            if guard.blocked:
                print(f"note: blocked {len(guard.blocked)} non-local requests", file=sys.stderr)
    finally:
        if args.keep_logdir:
            print(f"log dir kept: {logdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
