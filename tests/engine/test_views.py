"""Views: the tiles the model sees, and putting their outputs back together
(the same way in training metrics and in the Segmenter)."""

import numpy as np
import torch

from napari_avpt.engine.data import MIN_NEGATIVES, make_examples, phantom_examples, volume_examples
from napari_avpt.engine.evaluate import summarize
from napari_avpt.engine.train import split_examples
from napari_avpt.engine.views import MAX_VIEWS, breast_box, merge_class, merge_maps, views_for, volume_box
from napari_avpt.model.config import CLASS_NAMES
from napari_avpt.phantoms import make_breast_mri, make_mammogram

SIZE = 64


def _covered(fits, shape):
    seen = np.zeros(shape, bool)
    for f in fits:
        r0, r1, c0, c1 = f.box
        seen[r0:r1, c0:c1] = True
    return seen


def test_a_near_square_breast_gets_2x2_tiles_a_wide_band_two_side_by_side():
    square = views_for((600, 500), (50, 550, 20, 480), 224, max_views=4)
    assert len(square) == 4 and all(f.side == 250 for f in square)
    band = views_for((192, 224), (50, 116, 20, 214), 224, max_views=2)
    assert len(band) == 2 and all(f.side == 97 for f in band)
    assert band[0].box[2] == 20 and band[1].box[3] == 214  # left and right breast
    for fits, box, shape in ((square, (50, 550, 20, 480), (600, 500)), (band, (50, 116, 20, 214), (192, 224))):
        seen = _covered(fits, shape)
        r0, r1, c0, c1 = box
        assert seen[r0:r1, c0:c1].all() and seen.sum() == (r1 - r0) * (c1 - c0)  # the box, nothing outside


def test_one_view_is_the_whole_box_padded_to_a_square_and_tiles_never_zoom_past_the_limit():
    [one] = views_for((384, 480), (0, 383, 14, 470), 224, max_views=1)
    assert one.side == 456 and one.box == (0, 383, 14, 470) and one.pad == (36, 0)
    tiny = views_for((100, 120), (10, 90, 10, 110), 224, max_views=4)
    assert len(tiny) == 1 and tiny[0].side == 100  # 2 x 2 tiles of 50 px would zoom 4.5x


def test_merging_views_gives_back_the_image_inside_the_box():
    yy, xx = np.mgrid[0:300, 0:260].astype(np.float32)
    image = np.sin(yy / 25) + np.cos(xx / 30)  # smooth, so resampling loses little
    box = (20, 290, 10, 250)
    fits = views_for(image.shape, box, SIZE, max_views=4)
    assert len(fits) == 4
    views = torch.stack([f.to_model(image) for f in fits])
    back = merge_maps(fits, views, fill=-9.0)[0]
    r0, r1, c0, c1 = box
    inner = back[r0 + 4 : r1 - 4, c0 + 4 : c1 - 4] - image[r0 + 4 : r1 - 4, c0 + 4 : c1 - 4]
    assert np.abs(inner).max() < 0.1
    assert (back[:r0] == -9.0).all() and (back[:, c1:] == -9.0).all()


def test_dense_views_are_halfway_tiles_of_the_same_zoom_and_blend_back_to_the_image():
    yy, xx = np.mgrid[0:300, 0:260].astype(np.float32)
    image = np.sin(yy / 25) + np.cos(xx / 30)
    box = (20, 290, 10, 250)
    fits = views_for(image.shape, box, SIZE, max_views=4)
    dense = views_for(image.shape, box, SIZE, max_views=4, dense=True)
    assert len(dense) == 9 and {f.side for f in dense} == {fits[0].side}  # 3 x 3 at the training tiles' zoom
    assert {f.box for f in fits} < {f.box for f in dense}
    assert np.array_equal(_covered(dense, image.shape), _covered(fits, image.shape))
    views = torch.stack([f.to_model(image) for f in dense])
    back = merge_maps(dense, views, fill=-9.0, feather=True)[0]
    r0, r1, c0, c1 = box
    assert np.abs(back[r0 + 4 : r1 - 4, c0 + 4 : c1 - 4] - image[r0 + 4 : r1 - 4, c0 + 4 : c1 - 4]).max() < 0.1
    assert (back[:r0] == -9.0).all()


def test_feathered_dense_views_leave_no_seam_where_views_disagree():
    """Each view at its own level, as a view's attention is (a softmax over
    its own patches): tiles that merely meet show a step at their border;
    dense views blended towards their centres change smoothly."""
    shape, box = (300, 260), (20, 290, 10, 250)
    r0, r1, c0, c1 = box
    rng = np.random.default_rng(0)

    def largest_step(fits, feather):
        levels = torch.from_numpy(rng.permutation(len(fits)).astype(np.float32) / (len(fits) - 1))
        merged = merge_maps(fits, levels[:, None, None, None].expand(-1, 1, SIZE, SIZE), feather=feather)[0]
        inner = merged[r0:r1, c0:c1]
        return max(np.abs(np.diff(inner, axis=0)).max(), np.abs(np.diff(inner, axis=1)).max())

    assert largest_step(views_for(shape, box, SIZE, max_views=4), feather=False) > 0.3
    assert largest_step(views_for(shape, box, SIZE, max_views=4, dense=True), feather=True) < 0.1


def test_an_images_class_comes_from_the_views_that_find_a_lesion():
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
    np.testing.assert_allclose(merge_class(probs, [0, 30, 0]), probs[1])
    np.testing.assert_allclose(merge_class(probs, [0, 0, 0]), probs.mean(0))


def test_mammogram_views_label_only_the_view_with_the_mass_and_metrics_merge_them():
    ph = make_mammogram(8, label="malignant", shape=(384, 312))
    views = make_examples(ph.image, "MG", SIZE, "malignant", ph.lesion, example_id="mg")
    assert len(views) == MAX_VIEWS["MG"] == 4
    assert {v.group for v in views} == {"mg"} and len({v.id for v in views}) == 4
    labels = {CLASS_NAMES[v.label] for v in views}
    assert "malignant" in labels and "normal" in labels
    for v in views:
        assert (CLASS_NAMES[v.label] == "malignant") == bool(v.lesion.any())
    # Perfect views: Dice 1 for the one image, and its class is the lesion view's.
    lesion_prob = np.stack([v.lesion[0].numpy() for v in views])
    class_prob = np.stack([np.eye(3)[v.label] for v in views])
    metrics = summarize(views, lesion_prob, class_prob)
    assert metrics["n"] == 1 and metrics["dice"] > 0.99 and metrics["accuracy"] == 1.0
    # Missing the lesion in its view is a miss for the image.
    assert summarize(views, np.zeros_like(lesion_prob), class_prob)["dice"] == 0.0


def test_an_unpainted_lesion_class_keeps_its_label_on_every_view():
    ph = make_mammogram(8, label="benign", shape=(384, 312))
    views = make_examples(ph.image, "MG", SIZE, "benign", None, example_id="mg")
    assert all(CLASS_NAMES[v.label] == "benign" for v in views)


def test_volumes_give_as_many_lesion_free_slices_as_lesion_slices():
    ph = make_breast_mri(5, label="malignant", shape=(40, 64, 72))
    slices = volume_examples(ph.image, "MR", SIZE, "malignant", ph.lesion, example_id="mr")
    groups = {}
    for s in slices:
        groups.setdefault(s.group, []).append(s)
    with_lesion = [g for g in groups.values() if any(v.lesion.any() for v in g)]
    n_pos = int(ph.lesion.reshape(40, -1).any(1).sum())
    assert len(with_lesion) == n_pos and len(groups) - n_pos == max(n_pos, MIN_NEGATIVES)
    normal = make_breast_mri(6, label="normal", shape=(40, 64, 72))
    free = volume_examples(normal.image, "MR", SIZE, "normal", normal.lesion, example_id="n")
    assert len({s.group for s in free}) == MIN_NEGATIVES and all(CLASS_NAMES[s.label] == "normal" for s in free)


def test_mri_slices_share_the_volume_box_and_splits_keep_a_volume_whole():
    ph = make_breast_mri(5, label="malignant", shape=(24, 96, 112))
    box = volume_box(ph.image, "MR")
    assert box[1] - box[0] < 0.6 * 96  # the breasts, not the thorax
    slices = volume_examples(ph.image, "MR", SIZE, "malignant", ph.lesion, example_id="mr")
    assert all(s.fit.box[0] >= box[0] and s.fit.box[1] <= box[1] for s in slices)
    assert all(s.source == "mr" for s in slices) and len({s.group for s in slices}) == len(slices) // 2
    others = phantom_examples("US", 3, seed=1, size=SIZE)
    train_part, val_part = split_examples(slices + others, 0.5, seed=0)
    train_ids, val_ids = {e.id for e in train_part}, {e.id for e in val_part}
    mr_ids = {s.id for s in slices}
    assert mr_ids <= train_ids or mr_ids <= val_ids


def test_no_breast_found_means_the_whole_image():
    assert breast_box(np.zeros((50, 60)), "MR") == (0, 50, 0, 60)


def test_the_segmenter_feeds_the_model_the_views_training_sees():
    from napari_avpt.engine import build_model
    from napari_avpt.engine.infer import Segmenter
    from napari_avpt.engine.preprocess import to_model_image
    from napari_avpt.model import ModelConfig

    ph = make_mammogram(8, label="malignant", shape=(384, 312))
    segmenter = Segmenter(build_model(ModelConfig(method="avpt", img_size=SIZE))[0], "cpu")
    seen = []
    forward = segmenter._forward
    segmenter._forward = lambda x, t, m: seen.append(x) or forward(x, t, m)  # record, then run the real forward
    segmenter.segment_image(ph.image, "MG")  # no display window: scaled on the breast, as in training
    views = make_examples(ph.image, "MG", SIZE, "malignant", ph.lesion)
    [x] = seen
    assert len(views) == 4 and x.shape[0] == 9  # the training tiles, and the ones halfway between them
    for view in views:  # each training tile is among them, exactly as training sees it
        want = to_model_image(view.image)
        assert min((got - want).abs().max().item() for got in x) < 1e-5
