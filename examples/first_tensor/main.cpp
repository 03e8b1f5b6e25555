// A first Kiln program: make tensors, do math with broadcasting and type promotion, reduce and
// print. The code reads like libtorch's C++ API with `torch::` swapped for `kiln::`.
// Run it with scripts/demo.sh, or build the `first_tensor` target and run it directly.
#include <kiln/kiln.h>

#include <iostream>

int main() {
  kiln::manual_seed(42);

  // Nested braces make a tensor. Integers give int64 and floating values float32, like libtorch.
  kiln::Tensor a = kiln::tensor({{1, 2}, {3, 4}});
  std::cout << "a =\n" << a << "\n";

  // randn draws from the standard normal distribution (float32 by default).
  kiln::Tensor w = kiln::randn({2, 3});
  std::cout << "w =\n" << w << "\n";

  // int64 @ float32 is an error in libtorch too: convert first. matmul gives [2, 2] @ [2, 3].
  kiln::Tensor h = kiln::matmul(a.to(kiln::kFloat32), w);
  std::cout << "h = a @ w =\n" << h << "\n";

  // Broadcasting: the [3] bias is added to every row of the [2, 3] tensor.
  kiln::Tensor bias = kiln::tensor({0.5, -0.5, 1.0});
  kiln::Tensor z = h + bias;
  std::cout << "z = h + bias =\n" << z << "\n";

  // softmax over the last dim: each row sums to one.
  kiln::Tensor p = kiln::softmax(z, /*dim=*/1);
  std::cout << "softmax(z, 1) =\n" << p << "\n";
  std::cout << "row sums =\n" << p.sum(/*dim=*/1) << "\n";

  // Type promotion: int64 + float32 -> float32; item<T>() reads a one-element tensor.
  kiln::Tensor mixed = a + 0.5;
  std::cout << "a + 0.5 has dtype " << mixed.dtype() << "\n";
  float total = mixed.sum().item<float>();
  std::cout << "sum(a + 0.5) = " << total << "\n";

  // Views share memory: writing through a transposed view changes the original.
  kiln::Tensor at = a.t();
  at[0][1].fill_(100);
  std::cout << "after a.t()[0][1] = 100, a =\n" << a << "\n";

  // Bad input throws kiln::Error naming the op, what it got and what it expected.
  try {
    kiln::matmul(h, h);
  } catch (const kiln::Error& e) {
    std::cout << "caught kiln::Error: " << e.what() << "\n";
  }
  return 0;
}
