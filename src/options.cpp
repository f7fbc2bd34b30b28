// Operator options decoded generically from the reflection schema that flatc builds from our
// schema file: one walker serves every option table, present and future, with defaults and enum
// names. Custom options are FlexBuffers, decoded into the same Value type.
#include <flatbuffers/flexbuffers.h>
#include <flatbuffers/reflection.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "options_internal.h"

namespace litelens::detail {

extern const std::uint8_t tflite_bfbs[];
extern const std::size_t tflite_bfbs_size;

namespace {

constexpr int kMaxDepth = 32;

struct Reflection {
  const reflection::Schema* schema = nullptr;
  const reflection::Enum* builtin_options = nullptr;
  const reflection::Enum* builtin_options_2 = nullptr;
  std::vector<std::vector<const reflection::Field*>> fields_by_id;      // per object
  std::vector<std::vector<const reflection::Field*>> subgraph_fields;   // per object

  Reflection() {
    flatbuffers::Verifier verifier(tflite_bfbs, tflite_bfbs_size);
    if (!reflection::VerifySchemaBuffer(verifier)) std::abort();  // our own build artefact
    schema = reflection::GetSchema(tflite_bfbs);
    builtin_options = schema->enums()->LookupByKey("tflite.BuiltinOptions");
    builtin_options_2 = schema->enums()->LookupByKey("tflite.BuiltinOptions2");
    if (!builtin_options || !builtin_options_2) std::abort();
    const auto* objects = schema->objects();
    fields_by_id.resize(objects->size());
    subgraph_fields.resize(objects->size());
    for (flatbuffers::uoffset_t i = 0; i < objects->size(); ++i) {
      auto& fields = fields_by_id[i];
      for (const auto* f : *objects->Get(i)->fields()) fields.push_back(f);
      std::sort(fields.begin(), fields.end(), [](auto* a, auto* b) { return a->id() < b->id(); });
      for (const auto* f : fields)
        if (names_subgraph(f)) subgraph_fields[i].push_back(f);
    }
  }

  // Option fields that hold subgraph indices, recognised by the schema's naming.
  static bool names_subgraph(const reflection::Field* f) {
    const std::string_view name = f->name()->string_view();
    const bool by_name = name == "subgraph" || name == "called_computations" ||
                         name.ends_with("subgraph_index") || name.ends_with("subgraph_indices");
    const auto bt = f->type()->base_type();
    const bool integral = (bt >= reflection::Byte && bt <= reflection::ULong) ||
                          (bt == reflection::Vector && f->type()->element() >= reflection::Byte &&
                           f->type()->element() <= reflection::ULong);
    return by_name && integral;
  }

  // The object index of a union member's table, or -1.
  int union_object(const reflection::Enum* e, std::uint8_t tag) const {
    if (tag == 0) return -1;
    const auto* v = e->values()->LookupByKey(tag);
    if (!v || !v->union_type()) return -1;
    return v->union_type()->index();
  }
};

const Reflection& reflect() {
  static const Reflection r;
  return r;
}

bool is_integer(reflection::BaseType bt) { return bt >= reflection::Byte && bt <= reflection::ULong; }
bool is_float(reflection::BaseType bt) { return bt == reflection::Float || bt == reflection::Double; }

// Scalar reads by reflection type (header-only, so the library needs no flatbuffers binary).
// The verifier aligns vectors only to 4 bytes, so elements of a [long] or [double] vector in a
// hostile (or rewritten) file may sit unaligned: read through memcpy, never through a cast.
template <class T>
T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;  // little-endian host (checked in decode.cpp)
}
std::int64_t read_int(reflection::BaseType bt, const std::uint8_t* p) {
  switch (bt) {
    case reflection::UType:
    case reflection::Bool:
    case reflection::UByte: return load<std::uint8_t>(p);
    case reflection::Byte: return load<std::int8_t>(p);
    case reflection::Short: return load<std::int16_t>(p);
    case reflection::UShort: return load<std::uint16_t>(p);
    case reflection::Int: return load<std::int32_t>(p);
    case reflection::UInt: return load<std::uint32_t>(p);
    case reflection::Long: return load<std::int64_t>(p);
    case reflection::ULong: return static_cast<std::int64_t>(load<std::uint64_t>(p));
    default: return 0;
  }
}
double read_float(reflection::BaseType bt, const std::uint8_t* p) {
  if (bt == reflection::Float) return load<float>(p);
  if (bt == reflection::Double) return load<double>(p);
  return static_cast<double>(read_int(bt, p));
}
std::int64_t field_int(const flatbuffers::Table& t, const reflection::Field& f) {
  const auto* p = t.GetAddressOf(f.offset());
  return p ? read_int(f.type()->base_type(), p) : f.default_integer();
}
double field_float(const flatbuffers::Table& t, const reflection::Field& f) {
  const auto* p = t.GetAddressOf(f.offset());
  return p ? read_float(f.type()->base_type(), p) : f.default_real();
}
const std::uint8_t* element(const flatbuffers::VectorOfAny* vec, reflection::BaseType bt, flatbuffers::uoffset_t i) {
  return vec->Data() + flatbuffers::GetTypeSize(bt) * i;
}

Value enum_or_number(const reflection::Schema* schema, int enum_index, reflection::BaseType bt, std::int64_t v) {
  if (enum_index >= 0) {
    const auto* e = schema->enums()->Get(static_cast<flatbuffers::uoffset_t>(enum_index));
    if (const auto* ev = e->values()->LookupByKey(v)) return Value(ev->name()->str());
  }
  if (bt == reflection::ULong) return Value(static_cast<std::uint64_t>(v));
  return Value(v);
}

Value decode_table(const Reflection& r, int object, const flatbuffers::Table& table, int depth);

Value decode_vector(const Reflection& r, const reflection::Field* f, const flatbuffers::VectorOfAny* vec,
                    int depth) {
  Value::List list;
  if (!vec) return Value(std::move(list));
  const auto elem = f->type()->element();
  const int index = f->type()->index();
  if (f->name()->string_view() == "composite_attributes" && elem == reflection::UByte) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(vec->Data()), vec->size());
    if (verify_flexbuffer(bytes)) return decode_flexbuffer(bytes);
  }
  list.reserve(vec->size());
  for (flatbuffers::uoffset_t i = 0; i < vec->size(); ++i) {
    if (elem == reflection::Bool) {
      list.emplace_back(read_int(elem, element(vec, elem, i)) != 0);
    } else if (is_integer(elem)) {
      list.push_back(enum_or_number(r.schema, index, elem, read_int(elem, element(vec, elem, i))));
    } else if (is_float(elem)) {
      list.emplace_back(read_float(elem, element(vec, elem, i)));
    } else if (elem == reflection::String) {
      list.emplace_back(flatbuffers::GetAnyVectorElemPointer<const flatbuffers::String>(vec, i)->str());
    } else if (elem == reflection::Obj && index >= 0 &&
               !r.schema->objects()->Get(static_cast<flatbuffers::uoffset_t>(index))->is_struct()) {
      list.push_back(decode_table(r, index, *flatbuffers::GetAnyVectorElemPointer<const flatbuffers::Table>(vec, i),
                                  depth + 1));
    } else {
      list.emplace_back();
    }
  }
  return Value(std::move(list));
}

Value decode_table(const Reflection& r, int object, const flatbuffers::Table& table, int depth) {
  Value::Map out;
  if (depth > kMaxDepth) return Value(std::move(out));
  for (const auto* f : r.fields_by_id[static_cast<std::size_t>(object)]) {
    if (f->deprecated()) continue;
    const auto bt = f->type()->base_type();
    Value v;
    if (bt == reflection::UType || bt == reflection::Union) {
      continue;  // no option table uses unions; the tag is not an option of its own
    } else if (bt == reflection::Bool) {
      v = Value(field_int(table, *f) != 0);
    } else if (is_integer(bt)) {
      v = enum_or_number(r.schema, f->type()->index(), bt, field_int(table, *f));
    } else if (is_float(bt)) {
      v = Value(field_float(table, *f));
    } else if (bt == reflection::String) {
      if (const auto* s = flatbuffers::GetFieldS(table, *f)) v = Value(s->str());
    } else if (bt == reflection::Vector) {
      v = decode_vector(r, f, flatbuffers::GetFieldAnyV(table, *f), depth);
    } else if (bt == reflection::Obj) {
      const int index = f->type()->index();
      const auto* obj = r.schema->objects()->Get(static_cast<flatbuffers::uoffset_t>(index));
      if (!obj->is_struct())
        if (const auto* t = flatbuffers::GetFieldT(table, *f)) v = decode_table(r, index, *t, depth + 1);
    }
    out.emplace_back(f->name()->str(), std::move(v));
  }
  return Value(std::move(out));
}

// What decode_table copies out of a table: vector elements and string bytes, recursively.
std::uint64_t table_weight(const Reflection& r, int object, const flatbuffers::Table& table, int depth) {
  std::uint64_t weight = 0;
  if (depth > kMaxDepth) return weight;
  for (const auto* f : r.fields_by_id[static_cast<std::size_t>(object)]) {
    if (f->deprecated()) continue;
    const auto bt = f->type()->base_type();
    if (bt == reflection::String) {
      if (const auto* s = flatbuffers::GetFieldS(table, *f)) weight += s->size();
    } else if (bt == reflection::Vector) {
      const auto* vec = flatbuffers::GetFieldAnyV(table, *f);
      if (!vec) continue;
      const auto elem = f->type()->element();
      const int index = f->type()->index();
      if (elem == reflection::Obj && index >= 0 &&
          !r.schema->objects()->Get(static_cast<flatbuffers::uoffset_t>(index))->is_struct()) {
        for (flatbuffers::uoffset_t i = 0; i < vec->size(); ++i)
          weight += 4 + table_weight(r, index, *flatbuffers::GetAnyVectorElemPointer<const flatbuffers::Table>(vec, i),
                                     depth + 1);
      } else {
        weight += static_cast<std::uint64_t>(vec->size()) * std::max<std::size_t>(1, flatbuffers::GetTypeSize(elem));
      }
    } else if (bt == reflection::Obj) {
      const int index = f->type()->index();
      const auto* obj = r.schema->objects()->Get(static_cast<flatbuffers::uoffset_t>(index));
      if (!obj->is_struct())
        if (const auto* t = flatbuffers::GetFieldT(table, *f)) weight += 4 + table_weight(r, index, *t, depth + 1);
    }
  }
  return weight;
}

// Reads one integer-typed field or vector element and reports it.
void report_integers(const reflection::Field* f, const flatbuffers::Table& table,
                     const std::function<void(std::int64_t, std::string_view)>& fn) {
  const auto bt = f->type()->base_type();
  if (bt == reflection::Vector) {
    if (const auto* vec = flatbuffers::GetFieldAnyV(table, *f))
      for (flatbuffers::uoffset_t i = 0; i < vec->size(); ++i)
        fn(read_int(f->type()->element(), element(vec, f->type()->element(), i)), f->name()->string_view());
  } else {
    // An absent field reads as its default, and the runtime follows it: a WHILE whose
    // body_subgraph_index is absent runs subgraph 0. (Writers omit fields equal to the default,
    // so skipping absent ones would hide exactly the cycles through the main graph.)
    fn(field_int(table, *f), f->name()->string_view());
  }
}

// The budget counts nodes and string/key bytes: FlexBuffers may point many vector elements or
// map keys at one long string, which would otherwise be copied once per reference.
struct FlexDecoder {
  std::int64_t budget;

  std::string text(const char* p, std::size_t n) {
    const auto take = std::min<std::size_t>(n, static_cast<std::size_t>(std::max<std::int64_t>(budget, 0)));
    budget -= static_cast<std::int64_t>(n);
    return std::string(p, take);
  }

  Value convert(const flexbuffers::Reference& ref, int depth) {
    if (--budget < 0 || depth > 64) return Value();
    if (ref.IsNull()) return Value();
    if (ref.IsBool()) return Value(ref.AsBool());
    if (ref.IsInt()) return Value(ref.AsInt64());
    if (ref.IsUInt()) return Value(ref.AsUInt64());
    if (ref.IsFloat()) return Value(ref.AsDouble());
    if (ref.IsKey()) {
      const char* key = ref.AsKey();
      return Value(text(key, std::strlen(key)));
    }
    if (ref.IsString()) {
      const auto s = ref.AsString();
      return Value(text(s.c_str(), s.size()));
    }
    if (ref.IsBlob()) {
      const auto blob = ref.AsBlob();
      Value::List bytes;
      const std::size_t n = std::min<std::size_t>(blob.size(), static_cast<std::size_t>(std::max<std::int64_t>(budget, 0)));
      budget -= static_cast<std::int64_t>(n);
      bytes.reserve(n);
      for (std::size_t i = 0; i < n; ++i) bytes.emplace_back(static_cast<std::uint64_t>(blob.data()[i]));
      return Value(std::move(bytes));
    }
    if (ref.IsMap()) {
      const auto map = ref.AsMap();
      const auto keys = map.Keys();
      const auto values = map.Values();
      Value::Map out;
      for (std::size_t i = 0; i < keys.size() && budget > 0; ++i) {
        const char* key = keys[i].AsKey();
        std::string name = text(key, std::strlen(key));
        out.emplace_back(std::move(name), convert(values[i], depth + 1));
      }
      return Value(std::move(out));
    }
    Value::List out;
    const auto append_all = [&](const auto& vec) {
      for (std::size_t i = 0; i < vec.size() && budget > 0; ++i) out.push_back(convert(vec[i], depth + 1));
    };
    if (ref.IsFixedTypedVector()) append_all(ref.AsFixedTypedVector());
    else if (ref.IsTypedVector()) append_all(ref.AsTypedVector());
    else if (ref.IsVector()) append_all(ref.AsVector());
    else return Value();
    return Value(std::move(out));
  }
};

}  // namespace

bool verify_flexbuffer(std::span<const std::byte> bytes) {
  if (bytes.size() < 3 || bytes.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) return false;
  // The reuse tracker keeps verification linear on payloads whose vectors share children.
  std::vector<std::uint8_t> tracker;
  return flexbuffers::VerifyBuffer(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), &tracker);
}

Value decode_flexbuffer(std::span<const std::byte> bytes) {
  // Shared children and strings can make a small payload expand enormously; cap what is
  // produced in proportion to the payload (the validator charges the payload per operator, so
  // many operators naming one payload cannot multiply this either).
  FlexDecoder decoder{static_cast<std::int64_t>(bytes.size()) * 16 + 256};
  return decoder.convert(flexbuffers::GetRoot(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0);
}

void for_each_subgraph_reference(const tflite::Operator* op,
                                 const std::function<void(std::int64_t, std::string_view)>& fn) {
  const Reflection& r = reflect();
  const auto visit = [&](const reflection::Enum* e, std::uint8_t tag, const void* table) {
    const int object = r.union_object(e, tag);
    if (object < 0 || !table) return;
    for (const auto* f : r.subgraph_fields[static_cast<std::size_t>(object)])
      report_integers(f, *static_cast<const flatbuffers::Table*>(table), fn);
  };
  visit(r.builtin_options, op->builtin_options_type(), op->builtin_options());
  visit(r.builtin_options_2, op->builtin_options_2_type(), op->builtin_options_2());
}

std::uint64_t options_weight(const tflite::Operator* op) {
  const Reflection& r = reflect();
  std::uint64_t weight = 0;
  const auto add = [&](const reflection::Enum* e, std::uint8_t tag, const void* table) {
    const int object = r.union_object(e, tag);
    if (object < 0 || !table) return;
    weight += 8 + table_weight(r, object, *static_cast<const flatbuffers::Table*>(table), 0);
  };
  add(r.builtin_options, op->builtin_options_type(), op->builtin_options());
  add(r.builtin_options_2, op->builtin_options_2_type(), op->builtin_options_2());
  return weight;
}

std::string_view options_type_name(const tflite::Operator* op) {
  const Reflection& r = reflect();
  for (auto [e, tag, table] : {std::tuple{r.builtin_options, static_cast<std::uint8_t>(op->builtin_options_type()),
                                          op->builtin_options()},
                               std::tuple{r.builtin_options_2, static_cast<std::uint8_t>(op->builtin_options_2_type()),
                                          op->builtin_options_2()}}) {
    if (tag == 0 || !table) continue;
    if (const auto* v = e->values()->LookupByKey(tag)) return v->name()->string_view();
  }
  return {};
}

Value decode_builtin_options(const tflite::Operator* op) {
  const Reflection& r = reflect();
  Value::Map merged;
  const auto add = [&](const reflection::Enum* e, std::uint8_t tag, const void* table) {
    const int object = r.union_object(e, tag);
    if (object < 0 || !table) return;
    Value decoded = decode_table(r, object, *static_cast<const flatbuffers::Table*>(table), 0);
    for (auto& entry : decoded.as_map()) merged.push_back(std::move(entry));
  };
  add(r.builtin_options, op->builtin_options_type(), op->builtin_options());
  add(r.builtin_options_2, op->builtin_options_2_type(), op->builtin_options_2());
  return Value(std::move(merged));
}

}  // namespace litelens::detail
