// Loss modules (MSELoss, L1Loss, SmoothL1Loss, NLLLoss, CrossEntropyLoss, BCELoss,
// BCEWithLogitsLoss): options holders whose forward(input, target) calls the F:: loss.
#pragma once

#include "kiln/nn/functional.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

#define KILN_LOSS_MODULE(Name, fn)                                                                \
  /** forward(input, target) = F::fn(input, target, options). */                                  \
  class Name##Impl : public Cloneable<Name##Impl> {                                               \
   public:                                                                                        \
    explicit Name##Impl(Name##Options options = {}) : options(std::move(options)) {}              \
    void reset() override {}                                                                      \
    void pretty_print(std::ostream& stream) const override { stream << "kiln::nn::" #Name "()"; } \
    Tensor forward(const Tensor& input, const Tensor& target) {                                   \
      return functional::fn(input, target, options);                                              \
    }                                                                                             \
    Name##Options options;                                                                        \
  };                                                                                              \
  KILN_MODULE(Name)

KILN_LOSS_MODULE(MSELoss, mse_loss);
KILN_LOSS_MODULE(L1Loss, l1_loss);
KILN_LOSS_MODULE(SmoothL1Loss, smooth_l1_loss);
KILN_LOSS_MODULE(NLLLoss, nll_loss);
KILN_LOSS_MODULE(CrossEntropyLoss, cross_entropy);
KILN_LOSS_MODULE(BCELoss, binary_cross_entropy);
KILN_LOSS_MODULE(BCEWithLogitsLoss, binary_cross_entropy_with_logits);
#undef KILN_LOSS_MODULE

}  // namespace kiln::nn
