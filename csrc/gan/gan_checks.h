// Argument checks and the loss kind of gan_losses, defined in csrc/gan/gan.cpp and shared with
// cuda/gan/gan.cu, so that both devices parse and reject inputs the same way.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

namespace dgm_fast {

enum GanKind : int { kMinimax = 0, kNonSaturating = 1, kReversed = 2 };

// "minimax", "non_saturating" or "reversed"; anything else is a ValueError naming the choices.
int parse_gan_kind(c10::string_view kind);
// real_logits, fake_logits: any shapes, same float dtype and device, at least one element each.
void check_gan_losses_args(const at::Tensor& real_logits, const at::Tensor& fake_logits);
// grad_d, grad_g: 0-dim gradients of the two losses, the logits' dtype and device.
void check_gan_losses_backward_args(const at::Tensor& grad_d, const at::Tensor& grad_g,
                                    const at::Tensor& real_logits, const at::Tensor& fake_logits);

}  // namespace dgm_fast
