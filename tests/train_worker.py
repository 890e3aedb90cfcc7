"""`repaint train` under torchrun for the tests: counts the optimiser steps each process
takes (written to $COUNT_DIR/rank<N>) and, with $STOP_AFTER=N, sends rank 0 a SIGTERM
during its N-th step, as a cluster's preemption would."""

import os
import signal
import sys
from pathlib import Path

import torch

from repaint.cli import main

taken = 0
real_step = torch.optim.AdamW.step
stop_after = int(os.environ.get("STOP_AFTER", "0"))
rank = os.environ.get("RANK", "0")


def counted(self, *args, **kwargs):
    global taken
    result = real_step(self, *args, **kwargs)
    taken += 1
    if taken == stop_after and rank == "0":
        os.kill(os.getpid(), signal.SIGTERM)
    return result


torch.optim.AdamW.step = counted
code = main(sys.argv[1:])
Path(os.environ["COUNT_DIR"], f"rank{rank}").write_text(str(taken))
sys.exit(code)
