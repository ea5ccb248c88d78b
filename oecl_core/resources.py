"""What a target's runs need besides GPU time, for `python -m oecl_core plan`: the data sets they read, the disk their
run folders take, and the GPU memory of one training job.

Data sets: each one the runs read (their ID, OE and anomaly sets, experiments.run_inputs, as the Snakefile's jobs
wait for them), whether `data prepare` downloads it by itself or it is a manual download (its record,
data/sets/), its size on disk (the download: measured where the raw files are here, else the record's
`download_size`; prepared: the prepared folder's files where prepared, else its images x bytes per stored image)
and how many of the target's training jobs wait for it.

Disk: a run folder holds checkpoint.pt (model, optimiser state, epoch, the log and the settings; train.py), log.csv,
config.json and metrics.json, beside the job's log and benchmark files. A checkpoint's size is computed from counts:
the state_dict's parameters and buffers (elements x bytes each) of the run's network, the optimiser's state per
parameter (read off one step of the run's optimiser on a small network), the log's rows and torch.save's
per-tensor overhead. `keep_checkpoints: false` (config.yaml) removes each checkpoint once its run is scored.

GPU memory of a training step (train.py keeps on the device, for the whole run): the normal training images and the
OE pool as uint8, the network's parameters, gradients and optimiser state, under bf16 autocast (precision auto on
CUDA) the bf16 copies of its weights; and, per step, the float views it forwards and the activations the
backward pass needs: the tensors autograd saves in the forward, counted on the meta device (shapes, no compute) on
the method's own network at the view size (per view: the difference between 4 and 2 views, so the weights saved
alongside drop out), at 2 bytes per float element under bf16 autocast (4 with precision fp32). Counted, not measured
on a GPU: bf16 autocast keeps most saved tensors in bf16, not all. Not counted: the backward's transient gradient
buffers, the loss's similarity matrices, the CUDA context and the allocator's cache (nvidia-smi shows more than this).
"""
from __future__ import annotations

# the parts live in resources_data (data sets), resources_disk (network state, run folders) and resources_gpu (GPU
# memory, forward cap); every name is re-exported here, where the planner, scores and the tests import them from
from .resources_data import (GB, DataSetUse, Size, data_set_uses, download_size, fmt_bytes, image_bytes,  # noqa: F401
                             pool_count, prepared_size, total)
from .resources_disk import (LOG_CSV_BYTES_PER_EPOCH, REMOVED_RECORD_BYTES, SMALL_FILES_BYTES,  # noqa: F401
                             ZIP_BYTES_PER_STORAGE, NetworkState, RunDisk, build_network, log_pickle_bytes,
                             network_state, run_disk)
from .forward_cap import (FORWARD_CAP_MARGIN, INT32_ELEMENTS, largest_activation_per_view,  # noqa: F401
                          max_forward_views)
from .resources_gpu import GpuMemory, gpu_memory, saved_bytes_per_view  # noqa: F401
