"""The examples of several data specs (`data.parse_data_spec`), prepared in
parallel processes when asked: anatomy priors and resizing cost about a
second per image on one core, and a folder of thousands of images would
otherwise keep all but one core idle before the first training step.

The work is cut into tasks (a phantom spec whole, a folder's images in
chunks) that each process runs as `parse_data_spec` and
`data.sample_examples` do in one process, with the same example cache; the
results are put back in the order of the specs and images, so that they
are the same examples, in the same order, whatever the number of jobs.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace

import torch

from .data import Example, open_folder_spec, parse_data_spec, sample_examples
from .progress import Progress


def prepare_specs(specs: list[str], size: int, seed: int = 0, tissue: str = "truth", jobs: int = 1, progress=None):
    """One list of examples per spec. With `jobs` > 1, that many processes;
    `progress` gets a `Progress` ("prepare", unit "image") as images are done."""
    if jobs <= 1:
        return [parse_data_spec(spec, size, seed, tissue) for spec in specs]
    tasks = []  # (spec index, kind, spec, start, stop, images)
    for i, spec in enumerate(specs):
        if spec.startswith("phantoms:"):
            tasks.append((i, "phantoms", spec, 0, 0, 1))
            continue
        dataset, first = open_folder_spec(spec)  # opened here too: a bad spec fails before any process starts
        total = len(dataset) if first is None else min(first, len(dataset))
        chunk = max(1, min(32, total // (4 * jobs) or 1))
        for a in range(0, total, chunk):
            b = min(a + chunk, total)
            tasks.append((i, "images", spec, a, b, b - a))
    total = sum(t[5] for t in tasks)
    results: dict[int, list[Example]] = {}
    done = 0
    # spawn: the parent may already hold torch's threads (and CUDA), which a fork would copy half-made
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread) as pool:
        # A phantom spec is one task (its volumes share a random stream) and the
        # longest: started first, it runs beside the folders' chunks.
        order = sorted(range(len(tasks)), key=lambda n: tasks[n][1] != "phantoms")
        futures = {pool.submit(_run, *tasks[n][1:5], size, seed, tissue): n for n in order}
        for future in as_completed(futures):
            n = futures[future]
            results[n] = [_from_arrays(e) for e in future.result()]
            done += tasks[n][5]
            if progress is not None:
                progress(Progress("prepare", done, total, unit="image"))
    out: list[list[Example]] = [[] for _ in specs]
    for n, task in enumerate(tasks):
        out[task[0]] += results[n]
    return out


def _one_thread() -> None:
    torch.set_num_threads(1)  # the parallelism is the processes'


def _run(kind: str, spec: str, start: int, stop: int, size: int, seed: int, tissue: str) -> list[Example]:
    if kind == "phantoms":
        examples = parse_data_spec(spec, size, seed, tissue)
    else:
        dataset, _ = open_folder_spec(spec)
        examples = [e for i in range(start, stop) for e in sample_examples(dataset[i], size, tissue)]
    return [_to_arrays(e) for e in examples]


# Tensors cross the process boundary as numpy arrays (plain bytes in the
# pipe), not through torch's shared-memory handles: thousands of examples
# would hold as many open file descriptors.
def _to_arrays(e: Example):
    return replace(e, image=e.image.numpy(), tissue=e.tissue.numpy(), lesion=e.lesion.numpy())


def _from_arrays(e) -> Example:
    return replace(
        e, image=torch.from_numpy(e.image), tissue=torch.from_numpy(e.tissue), lesion=torch.from_numpy(e.lesion)
    )
