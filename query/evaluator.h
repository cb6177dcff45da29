// Running a parsed query on one document, next to the data: the filter, the
// sort key and the projection. A chunk server does, per document of a
// partition: doc.Load(id, bytes); if (Matches(q.filter, doc)) offer
// {id, SortKeyOf(q.sort, doc), Project(q.fields, doc)} to a TopK
// (query/topk.h). Semantics in docs/query-language.md.
//
// Document is not thread-safe (it reuses one parser's buffers): one per
// thread. The free functions only read the Document.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "query/ast.h"
#include "query/value.h"

namespace cairn::query {

class Document {
 public:
  Document();
  ~Document();
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  // Parses `json` as the document whose id is `id`. Returns false when the
  // bytes are not a JSON object (not JSON, invalid UTF-8, an array, ...):
  // such a document matches no query. Both views are copied; the Document
  // owns what it needs until the next Load.
  bool Load(std::string_view id, std::string_view json);

  bool loaded() const { return loaded_; }
  const std::string& id() const { return id_; }

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
  std::string id_;
  bool loaded_ = false;
};

// Whether the loaded document matches `filter`. False if none is loaded.
bool Matches(const Node& filter, const Document& doc);

// The value at `path` (nullopt when missing), "_id" included.
std::optional<Value> ValueAt(const Path& path, const Document& doc);

// One entry per sort key: the value at its path, nullopt when missing.
std::vector<std::optional<Value>> SortKeyOf(const std::vector<SortKey>& sort, const Document& doc);

// The result row's JSON text: an object with "_id" first, then the whole
// document (its own "_id" key left out) when `fields` is empty, else only the
// listed paths, nested as in the document, missing ones left out.
std::string Project(const std::vector<Path>& fields, const Document& doc);

}  // namespace cairn::query
