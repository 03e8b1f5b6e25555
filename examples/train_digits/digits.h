// The digits data set of examples/train_digits: the 8x8 handwritten digits that Debian's
// python3-sklearn ships as a gzipped CSV, read with zlib, and a DataLoader over it (shuffle,
// batches) plus a shuffled train/test split.
#pragma once

#include <kiln/kiln.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace digits {

/// Where python3-sklearn installs the file on Debian.
inline constexpr const char* kDefaultPath =
    "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";

/// images [N, 64] float32 in [0, 1] (pixel / 16) and labels [N] int64 in 0..9.
struct Dataset {
  kiln::Tensor images;
  kiln::Tensor labels;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

/// Reads the CSV (64 pixel values 0-16, then the label, per row). Throws std::runtime_error
/// naming the package to install when the file is missing, and the line of any bad row.
Dataset load(const std::string& path = kDefaultPath);

/// A random split: test_fraction of the rows (shuffled with seed) for testing, the rest for
/// training.
std::pair<Dataset, Dataset> train_test_split(const Dataset& data, double test_fraction,
                                             uint64_t seed);

/// Mini-batches of a dataset, reshuffled at every epoch when shuffle is set.
class DataLoader {
 public:
  DataLoader(Dataset data, int64_t batch_size, bool shuffle, uint64_t seed = 0);
  /// Starts an epoch: a new order when shuffling.
  void reset();
  /// The next batch of the epoch; false when the epoch is over.
  bool next(Dataset& batch);
  int64_t num_batches() const { return (data_.size() + batch_size_ - 1) / batch_size_; }

 private:
  Dataset data_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  uint64_t epoch_ = 0;
  kiln::Tensor order_;
  int64_t pos_ = 0;
};

}  // namespace digits
