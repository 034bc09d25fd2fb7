"""TokenMerger: ToMe's bipartite soft matching against a brute-force merge written with Python loops, its
token counts, settings and curriculum updates, and the merger inside VideoBEiT (gradients, deterministic
evaluation, activation checkpointing, merge-group bookkeeping)."""
import math

import pytest
import torch

from svitt_mm.engine.curricula.temporal_sparse_expansion import TemporalSparseExpansion
from svitt_mm.engine.hooks.curriculum_hook import MODEL_TARGETS, assign
from svitt_mm.models.pruners import ClsAttentionPruner, TokenMerger
from svitt_mm.registry import BACKBONES, TOKEN_PRUNERS
from svitt_mm.utils.arg_checks import ArgumentError

GRID = (3, 4)  # (Hp, Wp) of the brute-force cases


def brute_force_merge(x, positions, sizes, keys, num_merged):
    """One sample, written from the paper: A = even, B = odd local tokens; each A token's most cosine-similar
    B token; the num_merged A tokens with the most similar edges join their B token (size-weighted mean);
    the rest keep their order. Positions: rounded size-weighted mean of the members' (t, h, w)."""
    height, width = GRID
    local, local_keys, local_sizes = x[1:], keys[1:], sizes[1:]
    n = local.shape[0]
    a_idx, b_idx = list(range(0, n, 2)), list(range(1, n, 2))
    edges = []
    for i in a_idx:
        sims = [torch.nn.functional.cosine_similarity(local_keys[i], local_keys[j], dim=0).item() for j in b_idx]
        best = max(range(len(sims)), key=lambda m: sims[m])
        edges.append((sims[best], i, b_idx[best]))
    ranked = sorted(edges, key=lambda e: -e[0])[:num_merged]
    joins = {i: j for _, i, j in ranked}
    survivors = [i for i in range(n) if i not in joins]
    groups = {i: [i] for i in survivors}
    for i, j in joins.items():
        groups[j].append(i)
    tokens, new_sizes, new_positions = [x[0]], [sizes[0]], []
    for i in survivors:
        members = groups[i]
        weight = sum(float(local_sizes[m]) for m in members)
        tokens.append(sum(local[m] * local_sizes[m] for m in members) / weight)
        new_sizes.append(torch.tensor(weight))
        coords = []
        for m in members:
            p = int(positions[m])
            coords.append((p // (height * width), p % (height * width) // width, p % width))
        mean = [round(sum(c[d] * float(local_sizes[m]) for c, m in zip(coords, members)) / weight)
                for d in range(3)]
        new_positions.append(mean[0] * height * width + mean[1] * width + mean[2])
    destination = [survivors.index(joins.get(i, i)) for i in range(n)]
    return torch.stack(tokens), new_positions, torch.stack(new_sizes), destination


def random_case(batch, num_local, seed, dims=5, key_dims=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 1 + num_local, dims, generator=g, dtype=torch.float64)
    keys = torch.randn(batch, 1 + num_local, key_dims, generator=g, dtype=torch.float64)
    positions = torch.stack([torch.randperm(2 * GRID[0] * GRID[1], generator=g)[:num_local] for _ in range(batch)])
    sizes = torch.randint(1, 4, (batch, 1 + num_local), generator=g).to(torch.float64)
    sizes[:, 0] = 1
    return x, positions, sizes, keys


@pytest.mark.parametrize('num_local, keep_rate', [(8, 0.7), (9, 0.5), (7, 0.9), (12, 0.55)])
def test_reduce_matches_brute_force_merge(num_local, keep_rate):
    merger = TokenMerger(keep_rate=keep_rate)
    x, positions, sizes, keys = random_case(3, num_local, seed=num_local)
    out = merger.reduce(x, positions, sizes, None, keys, GRID)
    num_merged = num_local - math.ceil(keep_rate * num_local - 1e-9)
    assert out.tokens.shape == (3, 1 + num_local - num_merged, 5)
    for b in range(3):
        tokens, new_positions, new_sizes, destination = brute_force_merge(x[b], positions[b], sizes[b], keys[b],
                                                                          num_merged)
        torch.testing.assert_close(out.tokens[b], tokens)
        assert out.positions[b].tolist() == new_positions
        torch.testing.assert_close(out.sizes[b], new_sizes)
        assert out.destination[b].tolist() == destination


def test_uniform_sizes_by_default_and_cls_untouched():
    x, positions, _, keys = random_case(2, 10, seed=3)
    out = TokenMerger(r=4).reduce(x, positions[:1], None, None, keys, GRID)  # positions [1, N] broadcast
    assert torch.equal(out.tokens[:, 0], x[:, 0]) and torch.all(out.sizes[:, 0] == 1)
    assert out.sizes[:, 1:].sum(dim=1).tolist() == [10.0, 10.0]
    assert out.tokens.shape == (2, 7, 5) and out.positions.shape == (2, 6)


def test_mean_of_merged_values_is_kept():
    """Size-weighted averaging keeps the size-weighted sum of the local tokens."""
    x, positions, sizes, keys = random_case(2, 11, seed=5)
    out = TokenMerger(keep_rate=0.6).reduce(x, positions, sizes, None, keys, GRID)
    before = (x[:, 1:] * sizes[:, 1:, None]).sum(dim=1)
    after = (out.tokens[:, 1:] * out.sizes[:, 1:, None]).sum(dim=1)
    torch.testing.assert_close(after, before)


@pytest.mark.parametrize('num_local, r, merged', [(10, 3, 3), (10, 9, 5), (9, 9, 5), (1, 2, 0)])
def test_r_is_capped_at_set_a(num_local, r, merged):
    assert TokenMerger(r=r).num_merge(num_local) == merged


@pytest.mark.parametrize('kwargs, message', [
    (dict(), 'exactly one of keep_rate and r'),
    (dict(keep_rate=0.7, r=3), 'exactly one of keep_rate and r'),
    (dict(keep_rate=0.3), r'keep_rate: 0.3 must be'),
    (dict(r=0), r'r: 0 must be'),
])
def test_bad_settings_are_argument_errors(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        TokenMerger(**kwargs)


def test_registered_and_configurable():
    merger = TOKEN_PRUNERS.build(dict(type='TokenMerger', keep_rate=0.7))
    assert isinstance(merger, TokenMerger) and merger.keep_rate == 0.7 and merger.r is None
    assert 'keep_rate=0.7' in repr(merger)


# --- inside VideoBEiT --------------------------------------------------------------------------------------

CFG = dict(type='VideoBEiT', img_size=16, patch_size=4, embed_dims=16, num_layers=4, num_heads=2, mlp_ratio=2.0,
           drop_path_rate=0.0, max_frames=4, pruner=dict(type='TokenMerger', keep_rate=0.7), prune_layers=(1, 2))
SPARSE = dict(type='BlockSparseAttention', block_size=8, local_blocks=1, random_blocks=1, dense_threshold=1.0,
              backend='gather')


def build(seed=0, **overrides):
    torch.manual_seed(seed)
    model = BACKBONES.build({**CFG, **overrides})
    with torch.no_grad():  # non-zero bias tables and layer scales, so that every term matters
        for block in model.blocks:
            block.attn.relative_position_bias.table.normal_(0, 1)
            block.gamma_1.normal_(1, 0.1)
            block.gamma_2.normal_(1, 0.1)
    return model


def clip(batch=2, frames=4, seed=1):
    return torch.randn(batch, frames, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def coordinates(positions, grid=(4, 4)):
    height, width = grid
    return torch.stack([positions // (height * width), positions % (height * width) // width, positions % width], -1)


@pytest.mark.parametrize('attention', [None, SPARSE])
def test_video_beit_merges_to_keep_rate_and_records_groups(attention):
    model = build(attention=attention).eval()
    with torch.no_grad():
        out = model(clip())
    assert [k.shape[1] for k in out.kept_indices] == [45, 32] and out.tokens.shape == (2, 33, 16)
    first, second = out.token_groups
    assert first.shape == second.shape == (2, 64)
    assert (first >= 0).all() and (second >= 0).all()  # merging drops nothing
    for b in range(2):
        assert set(first[b].tolist()) == set(range(45)) and set(second[b].tolist()) == set(range(32))
        # first step: every member had size 1, so the position is the rounded mean of its members' cells
        cells = coordinates(torch.arange(64)).double()
        for token in range(45):
            members = (first[b] == token).nonzero()[:, 0]
            expected = cells[members].mean(dim=0).round().long()
            assert coordinates(out.kept_indices[0][b, token]).tolist() == expected.tolist()
        # the groups of the second step are unions of groups of the first
        for token in range(32):
            members = (second[b] == token).nonzero()[:, 0]
            firsts = set(first[b, members].tolist())
            assert set((first[b][:, None] == torch.tensor(sorted(firsts))).any(1).nonzero()[:, 0].tolist()) \
                == set(members.tolist())
    assert torch.equal(out.positions, out.kept_indices[-1])


def test_pooled_is_the_mean_over_original_tokens():
    model = build().eval()
    with torch.no_grad():
        out = model(clip())
    sizes = torch.stack([torch.bincount(g, minlength=32) for g in out.token_groups[-1]]).float()
    local = out.tokens[:, 1:]
    expected = model.pooler_norm((local * sizes[..., None]).sum(1) / sizes.sum(1, keepdim=True))
    torch.testing.assert_close(out.pooled, expected)


def test_pruner_groups_are_kept_tokens_and_minus_one():
    model = build(pruner=dict(type='ClsAttentionPruner', keep_rate=0.5)).eval()
    with torch.no_grad():
        out = model(clip())
    for kept, groups in zip(out.kept_indices, out.token_groups):
        for b in range(2):
            alive = (groups[b] >= 0).nonzero()[:, 0]
            assert sorted(alive.tolist()) == sorted(kept[b].tolist())
            assert torch.equal(kept[b, groups[b, alive]], alive)


def test_gradients_flow_through_merging():
    model = build(attention=SPARSE).train()
    out = model(clip())
    (out.tokens.square().mean() + out.pooled.sum()).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_evaluation_is_deterministic():
    model = build(attention=SPARSE).eval()
    video = clip()
    with torch.no_grad():
        first, second = model(video), model(video)
    assert torch.equal(first.tokens, second.tokens)
    for a, b in zip(first.token_groups + first.kept_indices, second.token_groups + second.kept_indices):
        assert torch.equal(a, b)


def test_checkpointing_keeps_outputs_groups_and_gradients():
    video = clip()
    results = []
    for with_cp in (False, True):
        model = build(attention=SPARSE, with_cp=with_cp, drop_path_rate=0.2).train()
        torch.manual_seed(7)  # the same sparse patterns and drop-path draws
        out = model(video)
        (out.tokens.square().mean() + out.pooled.sum()).backward()
        results.append((out, {n: p.grad.clone() for n, p in model.named_parameters()}))
    (out, grads), (out_cp, grads_cp) = results
    torch.testing.assert_close(out_cp.tokens, out.tokens, atol=1e-6, rtol=1e-5)
    for a, b in zip(out.token_groups + out.kept_indices, out_cp.token_groups + out_cp.kept_indices):
        assert torch.equal(a, b)
    for name in grads:
        torch.testing.assert_close(grads_cp[name], grads[name], atol=1e-5, rtol=1e-4)


def test_curriculum_keep_rate_stages_reach_the_merger():
    model = torch.nn.Module()
    model.vision_encoder = build(pruner=dict(type='TokenMerger', r=5)).eval()
    curriculum = TemporalSparseExpansion([dict(begin=0, keep_rate=0.9), dict(begin=2, keep_rate=0.5)])
    counts = []
    for epoch in range(3):
        _, settings = curriculum.stage_at(epoch)
        assign(MODEL_TARGETS['keep_rate'](model), 'keep_rate', settings['keep_rate'])
        with torch.no_grad():
            counts.append([k.shape[1] for k in model.vision_encoder(clip()).kept_indices])
    assert counts == [[58, 53], [58, 53], [32, 16]]
    assert model.vision_encoder.pruner.r is None
    with pytest.raises(ArgumentError, match='keep_rate'):
        model.vision_encoder.pruner.keep_rate = 0.3  # below what one bipartite step can merge


def test_pruners_keep_their_behaviour_through_reduce():
    """The default reduce keeps select()'s tokens, in order, with sizes untouched."""
    pruner = ClsAttentionPruner(keep_rate=0.5)
    x = torch.randn(2, 7, 4)
    probs = torch.rand(2, 3, 1, 7)
    out = pruner.reduce(x, torch.arange(6)[None] * 2, None, probs, x, GRID)
    keep = pruner.select(probs[:, :, 0, 1:].mean(1))
    assert torch.equal(out.tokens[:, 1:], x[:, 1:].gather(1, keep[..., None].expand(-1, -1, 4)))
    assert torch.equal(out.positions, keep * 2) and out.sizes is None
    assert (out.destination >= 0).sum().item() == 2 * 3
