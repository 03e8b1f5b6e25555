// kiln::OrderedDict: an insertion-ordered map with libtorch's torch::OrderedDict spelling. Modules
// keep their parameters, buffers and children in one; named_parameters() returns one.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/core/error.h"

namespace kiln {

/// Keys in insertion order with O(1) lookup; iteration yields Items with key() and value().
template <typename Key, typename Value>
class OrderedDict {
 public:
  /// One entry: a key and its value.
  class Item {
   public:
    Item(Key key, Value value) : pair_(std::move(key), std::move(value)) {}
    Value& operator*() { return value(); }
    const Value& operator*() const { return value(); }
    Value* operator->() { return &value(); }
    const Value* operator->() const { return &value(); }
    const Key& key() const noexcept { return pair_.first; }
    Value& value() noexcept { return pair_.second; }
    const Value& value() const noexcept { return pair_.second; }
    const std::pair<Key, Value>& pair() const noexcept { return pair_; }

   private:
    std::pair<Key, Value> pair_;
  };

  using Iterator = typename std::vector<Item>::iterator;
  using ConstIterator = typename std::vector<Item>::const_iterator;

  /// key_description names the keys in error messages ("Parameter", "Submodule").
  explicit OrderedDict(std::string key_description = "Key")
      : key_description_(std::move(key_description)) {}
  OrderedDict(std::initializer_list<Item> items) : OrderedDict() {
    for (const Item& item : items) insert(item.key(), item.value());
  }

  const std::string& key_description() const noexcept { return key_description_; }

  Item& front() { return at_index(0); }
  const Item& front() const { return at_index(0); }
  Item& back() { return at_index(items_.size() - 1); }
  const Item& back() const { return at_index(items_.size() - 1); }
  /// The item at position index (insertion order).
  Item& operator[](size_t index) { return at_index(index); }
  const Item& operator[](size_t index) const { return at_index(index); }
  /// The value of key; throws kiln::Error when absent.
  Value& operator[](const Key& key) {
    Value* v = find(key);
    KILN_CHECK(v != nullptr, "[OrderedDict] {} '{}' is not defined", key_description_, key);
    return *v;
  }
  const Value& operator[](const Key& key) const {
    const Value* v = find(key);
    KILN_CHECK(v != nullptr, "[OrderedDict] {} '{}' is not defined", key_description_, key);
    return *v;
  }
  /// Pointer to the value of key, or null.
  Value* find(const Key& key) noexcept {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &items_[it->second].value();
  }
  const Value* find(const Key& key) const noexcept {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &items_[it->second].value();
  }
  bool contains(const Key& key) const noexcept { return index_.count(key) != 0; }

  /// Adds key; throws kiln::Error if it is already there.
  template <typename V>
  Value& insert(Key key, V&& value) {
    KILN_CHECK(index_.count(key) == 0, "[OrderedDict] {} '{}' already defined", key_description_,
               key);
    index_.emplace(key, items_.size());
    items_.emplace_back(std::move(key), Value(std::forward<V>(value)));
    return items_.back().value();
  }
  /// Inserts or overwrites every item of other.
  void update(const OrderedDict& other) {
    for (const Item& item : other) {
      if (Value* v = find(item.key()))
        *v = item.value();
      else
        insert(item.key(), item.value());
    }
  }
  /// Removes key (keeping the order of the rest); throws when absent.
  void erase(const Key& key) {
    auto it = index_.find(key);
    KILN_CHECK(it != index_.end(), "[OrderedDict] {} '{}' is not defined", key_description_, key);
    const size_t pos = it->second;
    items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(pos));
    index_.erase(it);
    for (auto& [k, i] : index_)
      if (i > pos) --i;
  }
  void clear() {
    items_.clear();
    index_.clear();
  }
  void reserve(size_t n) {
    items_.reserve(n);
    index_.reserve(n);
  }

  Iterator begin() { return items_.begin(); }
  ConstIterator begin() const { return items_.begin(); }
  Iterator end() { return items_.end(); }
  ConstIterator end() const { return items_.end(); }
  size_t size() const noexcept { return items_.size(); }
  bool is_empty() const noexcept { return items_.empty(); }

  std::vector<Key> keys() const {
    std::vector<Key> out;
    out.reserve(items_.size());
    for (const Item& item : items_) out.push_back(item.key());
    return out;
  }
  std::vector<Value> values() const {
    std::vector<Value> out;
    out.reserve(items_.size());
    for (const Item& item : items_) out.push_back(item.value());
    return out;
  }
  const std::vector<Item>& items() const noexcept { return items_; }
  std::vector<std::pair<Key, Value>> pairs() const {
    std::vector<std::pair<Key, Value>> out;
    for (const Item& item : items_) out.push_back(item.pair());
    return out;
  }

 private:
  Item& at_index(size_t i) {
    KILN_CHECK(i < items_.size(), "[OrderedDict] index {} is out of range for {} items", i,
               items_.size());
    return items_[i];
  }
  const Item& at_index(size_t i) const {
    KILN_CHECK(i < items_.size(), "[OrderedDict] index {} is out of range for {} items", i,
               items_.size());
    return items_[i];
  }

  std::unordered_map<Key, size_t> index_;
  std::vector<Item> items_;
  std::string key_description_ = "Key";
};

}  // namespace kiln
