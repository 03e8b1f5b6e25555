// Convolution recognition: a layer written as im2col (F::unfold) followed by a matrix product
// with its weights is a convolution, and runs as one (oneDNN's direct kernel reads the input
// once instead of writing and reading a kh*kw times larger column matrix). A per-channel add
// after a convolution without bias becomes its bias.
#pragma once

#include "kiln/ir/graph.h"

namespace kiln::passes {

/// Runs the three rewrites, in this order, on every block; returns true when the graph
/// changed. Needs static sizes (it runs after shape propagation); float32 and float64 only.
///
/// Product with columns: bmm(A, im2col(x, kernel, dilation, padding, stride)) for a 4-D x
/// [N, C, H, W] (copied first when it is not contiguous) and an A [N, O, C*kh*kw] that is the
/// same matrix W for every image (N is 1, or A is W broadcast or copied along the batch, or a
/// cat of such pieces) becomes
/// view(conv2d(x, view(W, [O, C, kh, kw]), None, stride, padding, dilation, 1), [N, O, L]).
///
///   before: %c = im2col(%x, [3, 3], [1, 1], [0, 0], [1, 1]); %p = bmm(%w, %c)
///   after:  %k = view(%w, [16, 3, 3, 3]); %y = conv2d(%x, %k, None, [1, 1], [0, 0], [1, 1], 1)
///           %p = view(%y, [1, 16, 260100])
///
/// Channels: cat along dim 1 of bias-free conv2d results of one input with equal windows (or
/// of views of them keeping [N, O_i] in front), each read only by the cat, becomes one conv2d
/// with the weights concatenated along dim 0 (the per-channel products batch_mm left apart).
///
/// Bias: add(y, b) (either order), y a conv2d without bias or a chain of views of one ending
/// in a shape that starts with [N, O], read by nothing else, and b of the same dtype with O
/// elements that broadcasts along every dim but the channel dim, becomes a conv2d with bias
/// view(b, [O]).
bool recognize_convolutions(ir::Graph& g);

}  // namespace kiln::passes
