"""The data sets, run-folder disk and GPU memory of a target's jobs, as `plan` prints them (oecl_core/plan.py);
what is counted is oecl_core/resources.py's."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .methods import get_method


def resource_lines(costs: list, preset: str, data_root: Path | None = None) -> list[str]:
    """The data sets a target's runs read, the disk their run folders take (with and without keep_checkpoints) and
    the GPU memory of their largest job per data set (oecl_core/resources.py says what is counted); costs:
    plan.RunCost."""
    from . import resources as res
    from .data.registry import default_data_root

    root = Path(data_root or default_data_root())
    uses = res.data_set_uses([c.run for c in costs], preset, root)
    lines = [f"\ndata sets read ({len(costs):,} training jobs; `data prepare NAME` makes each, a manual one after "
             "`data how NAME`):",
             f"{'data set':<24} {'read as':<11} {'obtained':<9} {'download':>10} {'prepared':>10} {'jobs waiting':>13}"]
    for u in uses:
        lines.append(f"{u.name:<24} {'/'.join(sorted(u.roles)):<11} {u.obtained:<9} {str(u.download):>10} "
                     f"{str(u.prepared):>10} {u.jobs:>13,}")
    unknown = sum(1 for u in uses if u.download.bytes is None)
    lines.append(f"{'total':<24} {'':<11} {'':<9} {str(res.total(u.download for u in uses)):>10} "
                 f"{str(res.total(u.prepared for u in uses)):>10}"
                 + (f"  (downloads: {unknown} not known, not counted)" if unknown else ""))
    manual = [u for u in uses if u.obtained == "manual"]
    if manual:
        lines.append("manual downloads (`data prepare` stops with ManualDownloadRequired until their files are there): "
                     + ", ".join(f"{u.name} ({u.jobs:,} jobs)" for u in manual))
    if any(u.obtained != "embedded" for u in uses):
        lines.append("where the sizes come from (~: rounded or approximate figures, <=: an upper bound, ?: unknown):")
        lines += [f"  {u.name}: download {u.download.source}; prepared {u.prepared.source}" for u in uses
                  if u.obtained != "embedded"]

    # disk of the run folders
    by_method: dict[str, list] = defaultdict(list)
    for c in costs:
        by_method[c.cfg.method].append((c, res.run_disk(c.cfg)))
    lines += ["\ndisk of the run folders (results/<preset>/runs/; checkpoint.pt computed from the network's parameter "
              "and buffer counts, the optimiser's state, the log and torch.save's overhead):",
              f"{'method':<17} {'runs':>6} {'checkpoint/run':>15} {'model':>10} {'optimiser':>10} {'log':>9} "
              f"{'other files/run':>16} {'checkpoints':>12}"]
    ckpt_total = other_total = 0
    for method, items in by_method.items():
        ckpts = sum(d.checkpoint for _, d in items)
        others = sum(d.other for _, d in items)
        ckpt_total, other_total = ckpt_total + ckpts, other_total + others
        mean = lambda key, items=items: sum(d.parts.get(key, 0) for _, d in items) / len(items)  # noqa: E731
        per = ckpts / len(items)
        lines.append(f"{method:<17} {len(items):>6,} {res.fmt_bytes(per) if per else '-':>15} "
                     f"{res.fmt_bytes(mean('model')) if per else '-':>10} "
                     f"{res.fmt_bytes(mean('optimiser')) if per else '-':>10} "
                     f"{res.fmt_bytes(mean('log')) if per else '-':>9} {res.fmt_bytes(others / len(items)):>16} "
                     f"{res.fmt_bytes(ckpts) if ckpts else '-':>12}")
    trained = sum(1 for c in costs if get_method(c.cfg.method).trains)
    lean = other_total + res.REMOVED_RECORD_BYTES * trained
    largest = max((d.checkpoint for items in by_method.values() for _, d in items), default=0)
    lines.append(f"disk: {res.fmt_bytes(ckpt_total + other_total)} with keep_checkpoints: true (the default: "
                 f"{res.fmt_bytes(ckpt_total)} of checkpoints + {res.fmt_bytes(other_total)} of logs and metrics); "
                 f"{res.fmt_bytes(lean)} with keep_checkpoints: false (config.yaml), plus one checkpoint of up to "
                 f"{res.fmt_bytes(largest)} per job running at once")

    # GPU memory: the largest job per data set
    best: dict[str, tuple] = {}
    for c in costs:
        m = res.gpu_memory(c, root, c.view_shapes)
        if c.cfg.dataset not in best or m.total > best[c.cfg.dataset][1].total:
            best[c.cfg.dataset] = (c, m)
    gb = lambda n: f"{n / res.GB:.2f}"  # noqa: E731
    lines += ["\nGPU memory of a training job, GB (the largest per data set; kept on the GPU: its normal training "
              "images and OE pool as uint8; the network's weights, gradients, optimiser state and bf16 weight copies; "
              "per step the float batches and views and the activations autograd saves, in bf16; not counted: the "
              "backward's transient buffers, the CUDA context, the allocator's cache):",
              f"{'data set':<14} {'largest job':<36} {'train imgs':>10} {'OE pool':>8} {'network':>8} {'views':>6} "
              f"{'inputs':>7} {'activ.':>7} {'total':>7}"]
    for name, (c, m) in best.items():
        job = f"{c.cfg.method} cls {c.run.cls}" + (f" OE {c.cfg.oe}" if m.oe_images else "")
        mark = "" if m.measured else "<="
        lines.append(f"{name:<14} {job[:36]:<36} {mark + gb(m.train_images):>10} {mark + gb(m.oe_images):>8} "
                     f"{gb(m.network):>8} {m.views:>6,} {gb(m.inputs):>7} {gb(m.activations):>7} "
                     f"{mark + gb(m.total):>7}")
    if any(not m.measured for _, m in best.values()):
        lines.append("<=: images of data sets not prepared here at the widest canvas (an upper bound)")
    return lines
