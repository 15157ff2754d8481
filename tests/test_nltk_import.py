"""inference.text takes three classes from NLTK without running nltk/__init__ (see `_import_nltk_parts`)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import MODELS_DIR, REPO

PROBE = r"""
import json, sys
import inference.text as text
light = sorted(m for m in sys.modules if m.split(".")[0] in ("nltk", "sklearn", "scipy"))
vocab = json.load(open(sys.argv[1]))["words"]
ours = {lang: [text.stem(w, lang) for w in words] for lang, words in vocab.items()}
import nltk  # the whole package, as any other code would import it after us
from nltk.stem.snowball import SnowballStemmer
full = {lang: [SnowballStemmer({"es": "spanish", "en": "english"}[lang]).stem(w) for w in words]
        for lang, words in vocab.items()}
pairs = [("glioma", "gliomas"), ("tumor", "tumour"), ("cabeza", "cabesa"), ("abc", "acb")]
print(json.dumps({"light": light, "same_stems": ours == full, "n": sum(map(len, vocab.values())),
                  "distances": [text.edit_distance(a, b, transpositions=True) == nltk.edit_distance(a, b, transpositions=True)
                                for a, b in pairs],
                  "full_import_works": callable(nltk.word_tokenize) and hasattr(nltk.corpus, "stopwords")}))
"""


def test_the_stemmers_are_nltks_and_nltk_init_is_not_run():
    out = subprocess.run([sys.executable, "-c", PROBE, str(MODELS_DIR / "intents_vocab.json")], cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["light"] == []  # no nltk module left behind, and no scikit-learn / SciPy pulled in
    assert result["n"] > 100 and result["same_stems"]  # every vocabulary word stems as with `import nltk`
    assert all(result["distances"])
    assert result["full_import_works"]  # a later ordinary `import nltk` is unaffected
