"""The step's optional loss weights (training/loop/pipeline.py) and DoReMi's objective hook in one CPU process:
no weights is the plain token mean, unit weights change nothing, and DoReMi's weights give the gradient of the
paper's sum_i alpha_i * (domain i's token-mean loss)."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("megatron.core")


def _model():
    from training.model.config import ModelConfig
    from training.model.gpt import build_gpt

    return build_gpt(ModelConfig(num_layers=2, hidden_size=64, num_attention_heads=4, seq_length=16), vocab_size=128,
                     seed=3)


def _micro_batches():
    g = torch.Generator().manual_seed(0)
    out = []
    for ids in ([0, 1, 1], [2, 0, 1]):
        tokens = torch.randint(0, 128, (3, 17), generator=g)
        mask = torch.ones(3, 16)
        mask[1, 10:] = 0  # padding: not counted
        out.append({"tokens": tokens[:, :-1], "labels": tokens[:, 1:], "loss_mask": mask,
                    "position_ids": torch.arange(16).expand(3, 16), "dataset_id": torch.tensor(ids)})
    return out


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def _zero(model):
    for p in model.parameters():
        p.grad = None


def test_unit_weights_change_nothing_and_doremi_weights_give_the_papers_gradient(megatron_cpu):
    from megatron.core import parallel_state as ps

    from training.loop.pipeline import forward_backward
    from training.loop.step import forward_loss
    from training.mixture.config import DoremiSettings
    from training.mixture.doremi import objective_token_weights, update_domain_weights
    from training.mixture.proxy import DoremiObjective

    model, micro = _model(), _micro_batches()
    total = float(sum(mb["loss_mask"].sum() for mb in micro))
    plain = forward_backward(model, micro, global_tokens=total, bf16=False, device="cpu")
    g_plain = _grads(model)
    _zero(model)
    ones = forward_backward(model, micro, global_tokens=total, bf16=False, device="cpu",
                            loss_weights=lambda losses: [torch.ones(mb["tokens"].shape[0]) for mb in micro])
    assert all(torch.equal(a, b) for a, b in zip(g_plain, _grads(model)))   # bit-identical
    assert all(torch.equal(a, b) for a, b in zip(plain, ones))
    _zero(model)

    # DoReMi's hook against a reference "model" whose per-token losses are the proxy's minus 0.5 on domain 0
    # and plus 1 elsewhere: excess 0.5 on domain 0, 0 (clipped) on domains 1 and 2.
    objective = DoremiObjective(3, DoremiSettings(), initial_excess=0.0, state=None, device="cpu",
                                dp_group=ps.get_data_parallel_group())
    objective.micro = micro
    objective.reference = [(p - torch.where(mb["dataset_id"][:, None] == 0, 0.5, -1.0)) * mb["loss_mask"]
                           for mb, p in zip(micro, plain)]
    forward_backward(model, micro, global_tokens=total, bf16=False, device="cpu", loss_weights=objective)
    g_doremi = _grads(model)
    _zero(model)
    alpha = update_domain_weights(torch.full((3,), 1 / 3, dtype=torch.float64), torch.tensor([0.5, 0.0, 0.0]))
    assert objective.alpha.tolist() == pytest.approx(alpha.tolist(), abs=1e-5)
    assert objective.excess.tolist() == pytest.approx([0.5, 0.0, 0.0], abs=1e-5)
    assert objective.updates == 1 and objective.average.tolist() == pytest.approx(alpha.tolist(), abs=1e-5)

    # the paper's objective, written out: sum_i alpha_i * (sum of domain i's token losses / its tokens)
    sums, tokens = torch.zeros(3), torch.zeros(3)
    losses = []
    for mb in micro:
        masked = forward_loss(model, mb, bf16=False, device="cpu") * mb["loss_mask"]
        losses.append((masked, mb))
        tokens.index_add_(0, mb["dataset_id"], mb["loss_mask"].sum(1))
    objective_value = sum((masked.sum(1) * objective.alpha.float()[mb["dataset_id"]]
                           / tokens[mb["dataset_id"]]).sum() for masked, mb in losses)
    objective_value.backward()
    for a, b in zip(g_doremi, _grads(model)):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
    _zero(model)
    assert objective_token_weights(objective.alpha, tokens.double()).sum() > 0


def test_a_non_finite_loss_leaves_alpha_alone(megatron_cpu):
    from megatron.core import parallel_state as ps

    from training.mixture.config import DoremiSettings
    from training.mixture.proxy import DoremiObjective

    micro = _micro_batches()
    objective = DoremiObjective(3, DoremiSettings(), initial_excess=1.0, state=None, device="cpu",
                                dp_group=ps.get_data_parallel_group())
    objective.micro = micro
    objective.reference = [torch.zeros(3, 16) for _ in micro]
    weights = objective([torch.full((3, 16), float("nan")) for _ in micro])
    assert objective.updates == 0 and objective.alpha.tolist() == pytest.approx([1 / 3] * 3)
    assert [w.shape for w in weights] == [(3,), (3,)]
