"""A two-node rehearsal on one machine: tools/dist_train.sh with NNODES=2, each "node" one CPU process
(NODE_RANK 0 and 1, rendezvous at MASTER_ADDR=127.0.0.1:PORT), as on a cluster where every node runs the
script with its own NODE_RANK. Both nodes train, rank 0 writes the checkpoint, and a second launch of the
two nodes resumes from it."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from svitt_mm.utils.safe_resume import register_safe_checkpoint_globals
from tool_helpers import ROOT, data_options, tool_env, write_tiny_config

register_safe_checkpoint_globals()


def launch_two_nodes(port: int, config: str, work_dir: str, *args: str) -> list:
    """Start node 0 and node 1 as separate launches of tools/dist_train.sh; their combined outputs."""
    nodes = []
    for node_rank in (0, 1):
        env = dict(tool_env(), NNODES='2', NODE_RANK=str(node_rank), MASTER_ADDR='127.0.0.1', PORT=str(port),
                   PYTHON=sys.executable)
        nodes.append(subprocess.Popen(['bash', 'tools/dist_train.sh', config, '1', '--work-dir', work_dir, *args],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    for node_rank, (node, output) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, f'node {node_rank} failed:\n{output[-3000:]}'
    return outputs


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU (gloo) path')
def test_two_nodes_train_save_on_rank0_and_resume(small_demo_data, tmp_path):
    config = write_tiny_config(str(tmp_path / 'tiny_iter_demo.py'), max_iters=4)
    work_dir = str(tmp_path / 'work')
    options = ['--no-validate', '--cfg-options', *data_options(small_demo_data)]

    node0, node1 = launch_two_nodes(29551, config, work_dir, *options, 'train_cfg.max_iters=2')
    # One process group of 2 ranks over both nodes: the config and the log come from rank 0 (node 0) only.
    assert 'Distributed training: True' in node0 and 'GPU number: 2' in node0  # world size 2
    assert 'Iter(train) [2/2]' in node0 and 'Iter(train)' not in node1
    state = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu', weights_only=True)
    assert state['meta']['iter'] == 2

    node0, _ = launch_two_nodes(29552, config, work_dir, '--resume', *options)
    assert 'resumed epoch: 0, iter: 2' in node0 and 'Iter(train) [4/4]' in node0
    assert 'Iter(train) [1/4]' not in node0 and 'Iter(train) [3/4]' in node0
    assert torch.load(osp.join(work_dir, 'iter_4.pth'), map_location='cpu', weights_only=True)['meta']['iter'] == 4
