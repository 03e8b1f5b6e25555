// Reading digits.csv.gz with zlib's gz* stream API, the train/test split and the DataLoader.
#include "digits.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>

namespace digits {

Dataset load(const std::string& path) {
  if (!std::ifstream(path).good()) {
    throw std::runtime_error("cannot read the digits data at " + path +
                             "\nIt comes with Debian's scikit-learn package; install it with:\n"
                             "  sudo apt-get install python3-sklearn\n"
                             "or pass the path of a copy of digits.csv.gz with --data PATH.");
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("cannot open " + path + " with zlib");
  std::vector<float> pixels;
  std::vector<int64_t> labels;
  char line[4096];
  int64_t lineno = 0;
  while (gzgets(f, line, sizeof(line)) != nullptr) {
    ++lineno;
    std::stringstream row(line);
    std::string cell;
    std::vector<double> values;
    while (std::getline(row, cell, ',')) {
      if (cell.find_first_not_of(" \r\n") == std::string::npos) continue;
      values.push_back(std::stod(cell));
    }
    if (values.empty()) continue;
    if (values.size() != 65) {
      gzclose(f);
      throw std::runtime_error(path + ": line " + std::to_string(lineno) + " has " +
                               std::to_string(values.size()) + " values, expected 65");
    }
    for (int i = 0; i < 64; ++i) pixels.push_back(static_cast<float>(values[i] / 16.0));
    labels.push_back(static_cast<int64_t>(values[64]));
  }
  int err = 0;
  const char* msg = gzerror(f, &err);
  gzclose(f);
  if (err != Z_OK && err != Z_STREAM_END) throw std::runtime_error(path + ": " + msg);
  const int64_t n = static_cast<int64_t>(labels.size());
  Dataset d;
  d.images = kiln::from_blob(pixels.data(), {n, 64}, kiln::kFloat32).clone();
  d.labels = kiln::from_blob(labels.data(), {n}, kiln::kInt64).clone();
  return d;
}

namespace {
Dataset rows(const Dataset& d, const kiln::Tensor& index) {
  return Dataset{d.images.index_select(0, index), d.labels.index_select(0, index)};
}
// A permutation of 0..n-1 from std::mt19937_64, independent of Kiln's generator.
kiln::Tensor permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(p.begin(), p.end(), rng);
  return kiln::from_blob(p.data(), {n}, kiln::kInt64).clone();
}
}  // namespace

std::pair<Dataset, Dataset> train_test_split(const Dataset& data, double test_fraction,
                                             uint64_t seed) {
  const int64_t n = data.size();
  const int64_t n_test = static_cast<int64_t>(static_cast<double>(n) * test_fraction);
  kiln::Tensor p = permutation(n, seed);
  return {rows(data, p.narrow(0, n_test, n - n_test)), rows(data, p.narrow(0, 0, n_test))};
}

DataLoader::DataLoader(Dataset data, int64_t batch_size, bool shuffle, uint64_t seed)
    : data_(std::move(data)), batch_size_(batch_size), shuffle_(shuffle), seed_(seed) {
  if (batch_size <= 0) throw std::invalid_argument("DataLoader: batch_size must be positive");
  reset();
}

void DataLoader::reset() {
  order_ = shuffle_ ? permutation(data_.size(), seed_ + epoch_++) : kiln::arange(data_.size());
  pos_ = 0;
}

bool DataLoader::next(Dataset& batch) {
  if (pos_ >= data_.size()) return false;
  const int64_t len = std::min(batch_size_, data_.size() - pos_);
  batch = rows(data_, order_.narrow(0, pos_, len));
  pos_ += len;
  return true;
}

}  // namespace digits
