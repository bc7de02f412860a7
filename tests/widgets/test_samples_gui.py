"""napari-side tests: sample data, the reader inside napari, the phantom dock.
They need a display with OpenGL (run under xvfb-run on headless machines)."""

import numpy as np
import pytest

from napari_avpt.phantoms.formats import write_mammogram_dicom

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("key, modality, ndim", [("mammogram", "MG", 2), ("ultrasound", "US", 2), ("mri", "MR", 3)])
def test_sample_data_loads_with_hidden_truth(make_napari_viewer, tmp_path, key, modality, ndim):
    viewer = make_napari_viewer(show=True)  # a hidden canvas renders black
    viewer.open_sample("napari-avpt", key)
    images = [lay for lay in viewer.layers if lay._type_string == "image" and lay.visible]
    assert len(images) == 1
    image = images[0]
    assert image.ndim == ndim and image.metadata["modality"] == modality
    assert np.allclose(image.scale, image.metadata["spacing_mm"])
    truth = {lay.name.rsplit(" ", 2)[-2]: lay for lay in viewer.layers if lay.name.endswith("truth")}
    assert set(truth) == {"tissue", "lesion"}
    for layer in truth.values():
        assert not layer.visible and np.allclose(layer.scale, image.scale) and layer.data.shape == image.data.shape
    assert truth["lesion"].data.any()
    shot = viewer.screenshot(str(tmp_path / f"{key}.png"), canvas_only=True)
    assert shot.shape[-1] == 4 and shot[..., :3].std() > 10  # something is drawn
    assert (tmp_path / f"{key}.png").stat().st_size > 1000


def test_dicom_opens_in_napari_with_physical_scale(make_napari_viewer, tmp_path, small_mammogram):
    path = tmp_path / "mammo.dcm"
    write_mammogram_dicom(small_mammogram, path, "P", "u")
    viewer = make_napari_viewer()
    (layer,) = viewer.open(path, plugin="napari-avpt")
    assert np.allclose(layer.scale, small_mammogram.spacing)
    assert layer.metadata["laterality"] == "R" and layer.metadata["view"] == "MLO"
    assert np.array_equal(layer.data, small_mammogram.image)


def test_bad_file_gives_a_notification_and_keeps_layers(make_napari_viewer, tmp_path):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    mine = viewer.add_labels(np.zeros((5, 5), np.uint8), name="my annotations")
    mine.data[1, 1] = 3
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\x00" * 50)
    before = len(notification_manager.records)
    added = viewer.open(bad, plugin="napari-avpt")
    assert added == []
    assert list(viewer.layers) == [mine] and mine.data[1, 1] == 3
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("broken.dcm: not a DICOM file" in m for m in messages), messages


def test_phantom_widget_generates_in_a_worker(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-avpt", "Breast phantom")
    widget.modality.value = "Ultrasound"
    widget.finding.value = "malignant"
    widget.seed.value = 3
    widget()
    qtbot.waitUntil(lambda: len(viewer.layers) == 3, timeout=60_000)
    names = [lay.name for lay in viewer.layers]
    assert names == ["ultrasound 3", "ultrasound 3 tissue truth", "ultrasound 3 lesion truth"]
    assert viewer.layers["ultrasound 3"].metadata["label"] == "malignant"


def test_layers_segment_menu_opens_the_docks(make_napari_viewer):
    from napari._app_model import get_app_model

    viewer = make_napari_viewer()
    app = get_app_model()
    items = [i.command for i in app.menus.get_menu("napari/layers/segment") if hasattr(i, "command")]
    ids = {c.id for c in items}
    assert {"napari-avpt.segment_widget", "napari-avpt.tune_widget"} <= ids
    titles = {c.id: c.title for c in items}
    assert "A-VPT" in titles["napari-avpt.segment_widget"]
    app.commands.execute_command("napari-avpt.segment_widget").result()
    assert any("Segment lesion" in name for name in viewer.window.dock_widgets)
