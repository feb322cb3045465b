"""shape_captions: captions agree with the pixels, tokenization round trip, determinism, options and errors;
text_embeddings: precomputed embeddings from an .npz."""
import numpy as np
import pytest

from jaxvision.data import load, shapes
from jaxvision.data import shape_captions as sc


@pytest.fixture(scope="module")
def batch():
    return load("shape_captions", "val", 64, num_examples=64, image_size=32, random_caption_order=False).batch(0)


def _pixels_of(img, color):
    """Boolean mask of the pixels within the data set's colour jitter of ``shapes.COLORS[color]``."""
    return np.abs(img - shapes.COLORS[color]).max(-1) <= 0.051


def test_format(batch):
    b = batch
    assert b["image"].shape == (64, 32, 32, 3) and b["image"].dtype == np.float32
    assert 0 <= b["image"].min() and b["image"].max() <= 1
    assert b["tokens"].shape == (64, sc.MAX_TOKENS) and b["tokens"].dtype == np.int32
    np.testing.assert_array_equal(b["token_mask"], b["tokens"] != 0)
    for k in ("color", "shape", "size"):
        assert b[k].shape == (64, 2) and b[k].dtype == np.int32
    single = b["layout"] == 0
    assert single.any() and (~single).any() and set(b["layout"].tolist()) == {0, 1, 2}
    assert (b["color"][single, 1] == -1).all() and (b["color"][~single] >= 0).all()


def test_captions_are_the_annotation_and_agree_with_the_pixels(batch):
    b = batch
    captions = sc.detokenize(b["tokens"])
    checked_pairs = 0
    for k, text in enumerate(captions):
        assert text == sc.caption_of(b["color"][k], b["shape"][k], b["size"][k], b["layout"][k])
        words = text.split()
        assert words[2] == sc.COLOR_NAMES[b["color"][k, 0]] and words[3] == shapes.CLASS_NAMES[b["shape"][k, 0]]
        m0 = _pixels_of(b["image"][k], b["color"][k, 0])
        assert m0.sum() >= 10, text  # the named colour is drawn
        if b["layout"][k] == 0:
            assert len(words) == 4
            continue
        assert words[4] == ("above" if b["layout"][k] == 1 else "left")
        if b["color"][k, 0] == b["color"][k, 1]:
            continue
        m1 = _pixels_of(b["image"][k], b["color"][k, 1])
        ys, xs = np.mgrid[:32, :32]
        axis = ys if b["layout"][k] == 1 else xs  # object 0 is the upper (vertical) / left (horizontal) one
        assert axis[m0].mean() < axis[m1].mean(), text
        checked_pairs += 1
    assert checked_pairs >= 10


def test_large_is_larger_than_small(batch):
    b = batch
    single = np.flatnonzero(b["layout"] == 0)
    area = {0: [], 1: []}
    for k in single:
        area[int(b["size"][k, 0])].append(_pixels_of(b["image"][k], b["color"][k, 0]).sum())
    assert max(area[0]) < min(area[1])


def test_training_batches_name_pair_objects_in_both_orders():
    ds = load("shape_captions", "train", 64, num_examples=64)
    b = ds.batch(0)
    texts = sc.detokenize(b["tokens"])
    pairs = b["layout"] > 0
    swapped = [("below" in t or "right" in t) for t, p in zip(texts, pairs) if p]
    assert any(swapped) and not all(swapped)
    again = ds.batch(0)
    np.testing.assert_array_equal(b["tokens"], again["tokens"])  # the choice is seeded
    np.testing.assert_array_equal(b["image"], again["image"])


def test_tokenize_round_trip_and_errors():
    tokens, mask = sc.tokenize(["a small red circle", "A Large Blue Square left of a small white star"])
    assert tokens.shape == (2, sc.MAX_TOKENS) and mask.sum(1).tolist() == [4, 10]
    assert sc.detokenize(tokens) == ["a small red circle", "a large blue square left of a small white star"]
    with pytest.raises(ValueError, match="unknown word 'purple'"):
        sc.tokenize(["a small purple circle"])
    assert sc.tokenize(["a small purple circle"], unknown="unk")[0][0, 2] == sc.UNK
    with pytest.raises(ValueError, match=r"captions\[0\]: expected 1..3 words"):
        sc.tokenize(["a small red circle"], 3)
    with pytest.raises(ValueError, match="tokens"):
        sc.detokenize(np.array([[99]]))


def test_splits_differ_and_bad_options_raise():
    a = load("shape_captions", "val", 8, num_examples=8).batch(0)["image"]
    b = load("shape_captions", "test", 8, num_examples=8).batch(0)["image"]
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="max_objects"):
        load("shape_captions", "val", 8, max_objects=3)
    with pytest.raises(ValueError, match="image_size"):
        load("shape_captions", "val", 8, image_size=8)
    with pytest.raises(ValueError, match="max_tokens"):
        load("shape_captions", "val", 8, max_tokens=6)
    one = load("shape_captions", "val", 8, num_examples=8, image_size=16, max_objects=1, max_tokens=4).batch(0)
    assert (one["layout"] == 0).all() and one["tokens"].shape == (8, 4)


def _write(path, n=6, k=3, e=5):
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((n, k, e)).astype(np.float32)
    np.savez(path, image=rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), embedding=emb,
             caption=np.array([[f"c{i}{j}" for j in range(k)] for i in range(n)]))
    return emb


def test_text_embeddings_file(tmp_path):
    emb = _write(tmp_path / "train.npz")
    ds = load("text_embeddings", "train", 6, path=str(tmp_path), shuffle=False)
    b = ds.batch(0)
    assert b["image"].shape == (6, 8, 8, 3) and b["embedding"].shape == (6, 5)
    np.testing.assert_allclose(b["embedding"], emb[np.arange(6), b["caption_index"]])
    assert len(set(b["caption_index"].tolist())) > 1  # random captions in training
    ev = load("text_embeddings", "train", 6, path=str(tmp_path / "train.npz"), random_caption=False,
                shuffle=False).batch(0)
    np.testing.assert_allclose(ev["embedding"], emb[:, 0])
    avg = load("text_embeddings", "train", 6, path=str(tmp_path), average=3, shuffle=False).batch(0)
    np.testing.assert_allclose(avg["embedding"], emb.mean(1), rtol=1e-6)
    assert ds.info["captions"][0, 1] == "c01" and ds.info["embedding_dim"] == 5


def test_text_embeddings_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        load("text_embeddings", "train", 2, path=str(tmp_path))
    np.savez(tmp_path / "bad.npz", image=np.zeros((4, 8, 8, 3), np.uint8), embedding=np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"'embedding': expected \[N=4"):
        load("text_embeddings", "train", 2, path=str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "nokey.npz", image=np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="'embedding'"):
        load("text_embeddings", "train", 2, path=str(tmp_path / "nokey.npz"))
    _write(tmp_path / "ok.npz")
    with pytest.raises(ValueError, match="average"):
        load("text_embeddings", "train", 2, path=str(tmp_path / "ok.npz"), average=4)
