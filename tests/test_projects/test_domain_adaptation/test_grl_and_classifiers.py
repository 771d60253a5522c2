"""Gradient reversal and the domain classifiers of DA Faster R-CNN."""
import pytest
import torch

from projects.DomainAdaptation.domain_adaptation import (
    GradientReversal,
    ImageDomainClassifier,
    InstanceDomainClassifier,
    consistency_loss,
    domain_loss,
    grad_reverse,
)


@pytest.mark.parametrize('weight', [1.0, 0.1, 0.0])
def test_grl_flips_gradient_sign_with_weight(weight):
    x = torch.randn(3, 4, requires_grad=True)
    y = GradientReversal(weight)(x)
    assert torch.equal(y, x)
    (y * torch.arange(4.)).sum().backward()
    assert torch.allclose(x.grad, -weight * torch.arange(4.).expand(3, 4))


def test_grl_function_and_bad_weight():
    x = torch.ones(2, requires_grad=True)
    grad_reverse(x, 2.0).sum().backward()
    assert x.grad.tolist() == [-2.0, -2.0]
    with pytest.raises(ValueError, match='weight must be >= 0'):
        GradientReversal(-1)


def test_image_classifier_levels_loss_and_reversed_grad():
    head = ImageDomainClassifier(in_channels=8, hidden_channels=4,
                                 grl_weight=0.5)
    feats = [torch.randn(2, 8, 6, 6, requires_grad=True),
             torch.randn(2, 8, 3, 3, requires_grad=True)]
    logits = head(feats)
    assert [lg.shape for lg in logits] == [(2, 6, 6), (2, 3, 3)]
    assert head.image_probs(logits).shape == (2, )
    loss = head.loss(logits, 1)
    loss.backward()
    # The head descends its loss; the features receive the reversed grad.
    feats[0].grad = None
    logits = head(feats)
    grad_rev, = torch.autograd.grad(head.loss(logits, 1), feats[0])
    # reverse=False (the consistency path): +grl_weight, not reversed
    grad_fwd, = torch.autograd.grad(
        head.loss(head(feats, reverse=False), 1), feats[0])
    assert torch.allclose(grad_rev, -grad_fwd)
    plain = feats[0].detach().requires_grad_()
    grad_net, = torch.autograd.grad(
        head.loss([head.net(plain).squeeze(1), head(feats)[1]], 1), plain)
    assert torch.allclose(grad_fwd, 0.5 * grad_net, atol=1e-7)


def test_negative_grl_weight_is_refused():
    for cls in (ImageDomainClassifier, InstanceDomainClassifier):
        with pytest.raises(ValueError,
                           match='grl_weight must be a number >= 0'):
            cls(in_channels=8, grl_weight=-0.1)


def test_instance_classifier_takes_fc_features_or_roi_maps():
    head = InstanceDomainClassifier(in_channels=8, hidden_channels=4)
    head.eval()
    maps = torch.randn(3, 8, 7, 7)
    assert torch.allclose(head(maps), head(maps.mean(dim=(2, 3))))
    assert head(torch.randn(5, 8)).shape == (5, )


def test_instance_classifier_on_empty_rois():
    head = InstanceDomainClassifier(in_channels=8, hidden_channels=4)
    logits = head(torch.zeros(0, 8, 7, 7))
    assert logits.shape == (0, )
    for domain in (0, 1):
        loss = head.loss(head(torch.zeros(0, 8, 7, 7)), domain)
        assert loss.item() == 0 and loss.requires_grad
        loss.backward()
    cst = consistency_loss(torch.rand(2, requires_grad=True),
                           logits.sigmoid(), torch.zeros(0))
    assert cst.item() == 0 and cst.requires_grad


def test_domain_loss_and_consistency_values():
    assert domain_loss(torch.zeros(4), 1).item() == pytest.approx(
        torch.log(torch.tensor(2.)).item())
    with pytest.raises(ValueError, match='domain must be 0 or 1'):
        domain_loss(torch.zeros(1), 2)
    cst = consistency_loss(torch.tensor([0.2, 0.8]),
                           torch.tensor([0.2, 0.6, 1.0]),
                           torch.tensor([0., 1., 1.]))
    assert cst.item() == pytest.approx((0 + 0.04 + 0.04) / 3)
