// Patching, part 3: reading new values from .npy, .npz and .safetensors files, and matching
// litelens exports back to the model through their manifest.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "json_writer.h"
#include "litelens/patch.h"
#include "mapped_file.h"
#include "zip_archive.h"

namespace litelens {

using Kind = PatchError::Kind;

namespace {

[[noreturn]] void bad_file(const std::string& label, const std::string& why) {
  throw PatchError(Kind::bad_values_file, fmt::format("{}: {}", label, why));
}

// numpy descr -> dtype (little-endian or single-byte types only).
std::optional<DType> dtype_of_descr(std::string_view d) {
  if (d.size() < 2) return std::nullopt;
  const char order = d[0];
  const std::string_view code = d.substr(1);
  const bool single = code == "i1" || code == "u1" || code == "b1";
  if (order == '>' && !single) return std::nullopt;
  if (order != '<' && order != '|' && order != '=' && order != '>') return std::nullopt;
  if (code == "f4") return DType::float32;
  if (code == "f2") return DType::float16;
  if (code == "f8") return DType::float64;
  if (code == "i1") return DType::int8;
  if (code == "u1") return DType::uint8;
  if (code == "b1") return DType::bool_;
  if (code == "i2") return DType::int16;
  if (code == "u2") return DType::uint16;
  if (code == "i4") return DType::int32;
  if (code == "u4") return DType::uint32;
  if (code == "i8") return DType::int64;
  if (code == "u8") return DType::uint64;
  if (code == "c8") return DType::complex64;
  if (code == "c16") return DType::complex128;
  return std::nullopt;
}

// The value of 'key' in a numpy header dict ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }").
std::string header_value(const std::string& header, const std::string& key, const std::string& label) {
  const auto k = header.find("'" + key + "'");
  if (k == std::string::npos) bad_file(label, fmt::format("the .npy header has no '{}'", key));
  auto p = header.find(':', k);
  if (p == std::string::npos) bad_file(label, "malformed .npy header");
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p >= header.size()) bad_file(label, "malformed .npy header");
  std::size_t end;
  if (header[p] == '\'' || header[p] == '"') {
    end = header.find(header[p], p + 1);
    if (end == std::string::npos) bad_file(label, "malformed .npy header");
    return header.substr(p + 1, end - p - 1);
  }
  if (header[p] == '(') {
    end = header.find(')', p);
    if (end == std::string::npos) bad_file(label, "malformed .npy header");
    return header.substr(p, end - p + 1);
  }
  end = header.find_first_of(",}", p);
  return header.substr(p, end == std::string::npos ? std::string::npos : end - p);
}

std::vector<std::int64_t> parse_shape(const std::string& text, const std::string& label) {
  std::vector<std::int64_t> shape;
  std::size_t i = 1;  // after '('
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i >= text.size() || text[i] == ')') break;
    std::size_t used = 0;
    try {
      const long long v = std::stoll(text.substr(i), &used);
      if (v < 0) bad_file(label, "negative dimension in the .npy shape");
      shape.push_back(v);
    } catch (const PatchError&) {
      throw;
    } catch (const std::exception&) {
      bad_file(label, fmt::format("cannot read the .npy shape {}", text));
    }
    i += used;
    while (i < text.size() && (text[i] == 'L')) ++i;
  }
  return shape;
}

}  // namespace

Array parse_npy(std::span<const std::byte> bytes, const std::string& label) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) bad_file(label, "not an .npy file (no \\x93NUMPY magic)");
  const unsigned major = p[6];
  std::size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = p[8] | (p[9] << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad_file(label, "truncated .npy header");
    header_len = p[8] | (p[9] << 8) | (static_cast<std::size_t>(p[10]) << 16) | (static_cast<std::size_t>(p[11]) << 24);
    start = 12;
  } else {
    bad_file(label, fmt::format(".npy format version {} is not supported", major));
  }
  if (header_len > bytes.size() - start) bad_file(label, "truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(p + start), header_len);
  const std::string descr = header_value(header, "descr", label);
  const auto dtype = dtype_of_descr(descr);
  if (!dtype) bad_file(label, fmt::format("dtype '{}' is not supported (little-endian numeric types and bool only)", descr));
  const bool fortran = header_value(header, "fortran_order", label).find("True") != std::string::npos;
  std::vector<std::int64_t> shape = parse_shape(header_value(header, "shape", label), label);
  std::uint64_t count = 1;
  for (auto d : shape) {
    if (d != 0 && count > (std::uint64_t{1} << 56) / static_cast<std::uint64_t>(d)) bad_file(label, "the .npy shape is too large");
    count *= static_cast<std::uint64_t>(d);
  }
  const std::uint64_t need = count * (dtype_info(*dtype).bits / 8);
  const std::size_t data_at = start + header_len;
  if (bytes.size() - data_at != need)
    bad_file(label, fmt::format("the .npy data has {} bytes, but shape and dtype need {}", bytes.size() - data_at, need));
  std::vector<std::byte> data(bytes.begin() + static_cast<std::ptrdiff_t>(data_at), bytes.end());
  if (!fortran) return Array::own(*dtype, std::move(shape), std::move(data));
  // Fortran order: the data is the C-order array of the reversed shape; transpose it back.
  std::vector<std::int64_t> reversed(shape.rbegin(), shape.rend());
  Array a = Array::own(*dtype, reversed, std::move(data));
  std::vector<int> perm(shape.size());
  for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(perm.size() - 1 - i);
  return transpose(a, perm);
}

Array read_npy(const std::filesystem::path& path) {
  try {
    detail::MappedFile f(path.string());
    return parse_npy({f.data(), static_cast<std::size_t>(f.size())}, path.string());
  } catch (const Error& e) {
    bad_file(path.string(), e.message());
  }
}

namespace {

std::optional<DType> safetensors_dtype(const std::string& s) {
  if (s == "F64") return DType::float64;
  if (s == "F32") return DType::float32;
  if (s == "F16") return DType::float16;
  if (s == "BF16") return DType::bfloat16;
  if (s == "F8_E4M3") return DType::float8_e4m3fn;
  if (s == "F8_E5M2") return DType::float8_e5m2;
  if (s == "I64") return DType::int64;
  if (s == "I32") return DType::int32;
  if (s == "I16") return DType::int16;
  if (s == "I8") return DType::int8;
  if (s == "U64") return DType::uint64;
  if (s == "U32") return DType::uint32;
  if (s == "U16") return DType::uint16;
  if (s == "U8") return DType::uint8;
  if (s == "BOOL") return DType::bool_;
  return std::nullopt;
}

std::vector<NamedArray> read_safetensors(std::span<const std::byte> file, const std::string& label, std::string* manifest) {
  if (file.size() < 8) bad_file(label, "too short for a safetensors file");
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(std::to_integer<unsigned>(file[i])) << (8 * i);
  if (n > file.size() - 8 || n > 100'000'000) bad_file(label, "the safetensors header length is out of range");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(file.data()) + 8, reinterpret_cast<const char*>(file.data()) + 8 + n);
  } catch (const std::exception& e) {
    bad_file(label, fmt::format("the safetensors header is not JSON ({})", e.what()));
  }
  if (!header.is_object()) bad_file(label, "the safetensors header is not an object");
  const auto data = file.subspan(8 + n);
  std::vector<NamedArray> out;
  try {
    for (const auto& [key, v] : header.items()) {
      if (key == "__metadata__") {
        if (manifest && v.is_object() && v.contains("manifest") && v["manifest"].is_string()) *manifest = v["manifest"].get<std::string>();
        continue;
      }
      const auto dtype = safetensors_dtype(v.at("dtype").get<std::string>());
      if (!dtype) bad_file(label, fmt::format("'{}': dtype {} is not supported", key, v.at("dtype").dump()));
      const auto shape = v.at("shape").get<std::vector<std::int64_t>>();
      const auto offsets = v.at("data_offsets").get<std::vector<std::uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data.size())
        bad_file(label, fmt::format("'{}': data_offsets out of range", key));
      std::uint64_t count = 1;
      for (auto d : shape) {
        if (d < 0 || (d != 0 && count > (std::uint64_t{1} << 56) / static_cast<std::uint64_t>(d)))
          bad_file(label, fmt::format("'{}': bad shape", key));
        count *= static_cast<std::uint64_t>(d);
      }
      if (offsets[1] - offsets[0] != count * (dtype_info(*dtype).bits / 8))
        bad_file(label, fmt::format("'{}': {} bytes for {} {} values", key, offsets[1] - offsets[0], count,
                                    dtype_name(*dtype)));
      const auto bytes = data.subspan(offsets[0], offsets[1] - offsets[0]);
      out.push_back({key, Array::own(*dtype, shape, {bytes.begin(), bytes.end()})});
    }
  } catch (const nlohmann::json::exception& e) {
    bad_file(label, fmt::format("malformed safetensors header ({})", e.what()));
  }
  // safetensors orders the header by key; the data order is the file's.
  return out;
}

// The text of a 0-d numpy bytes ('S') array: the data after the header, without NUL padding.
std::string string_array_text(const std::vector<std::byte>& npy) {
  if (npy.size() < 10) return {};
  const auto* p = reinterpret_cast<const unsigned char*>(npy.data());
  const std::size_t start = p[6] == 1 ? 10 : 12;
  if (npy.size() < start) return {};
  const std::size_t len = p[6] == 1 ? (p[8] | (p[9] << 8))
                                    : (p[8] | (p[9] << 8) | (static_cast<std::size_t>(p[10]) << 16) |
                                       (static_cast<std::size_t>(p[11]) << 24));
  if (len > npy.size() - start) return {};
  std::string text(reinterpret_cast<const char*>(p + start + len), npy.size() - start - len);
  while (!text.empty() && text.back() == '\0') text.pop_back();
  return text;
}

std::vector<NamedArray> read_npz(std::span<const std::byte> file, const std::string& label, std::string* manifest) {
  std::optional<detail::ZipDirectory> dir;
  try {
    dir = detail::read_zip_directory(file, 0, label);
  } catch (const Error& e) {
    bad_file(label, e.message());
  }
  if (!dir) bad_file(label, "not a ZIP (.npz) archive");
  std::vector<NamedArray> out;
  for (const auto& m : dir->members) {
    if (m.is_directory) continue;
    std::vector<std::byte> content;
    const auto stored = file.subspan(m.data_offset, m.compressed_size);
    if (m.method == 0) {
      content.assign(stored.begin(), stored.end());
      if (detail::crc32_of(content) != m.crc32) bad_file(label, fmt::format("'{}': CRC mismatch", m.name));
    } else if (m.method == 8) {
      content.reserve(m.size);
      try {
        const auto crc = detail::inflate_member(stored, m.size, [&](std::span<const std::byte> s) {
          content.insert(content.end(), s.begin(), s.end());
        }, label, m.name, m.data_offset);
        if (crc != m.crc32) bad_file(label, fmt::format("'{}': CRC mismatch", m.name));
      } catch (const Error& e) {
        bad_file(label, e.message());
      }
    } else {
      bad_file(label, fmt::format("'{}' uses compression {}", m.name, detail::zip_method_name(m.method)));
    }
    if (m.name == "manifest.json") {
      if (manifest) manifest->assign(reinterpret_cast<const char*>(content.data()), content.size());
      continue;
    }
    if (m.name == "manifest.json.npy") {
      // np.savez(f, **dict(np.load(export))) keeps the manifest as a 0-d bytes array.
      if (manifest) *manifest = string_array_text(content);
      continue;
    }
    std::string key = m.name;
    if (key.size() > 4 && key.ends_with(".npy")) key.resize(key.size() - 4);
    out.push_back({std::move(key), parse_npy(content, label + ":" + m.name)});
  }
  return out;
}

}  // namespace

std::vector<NamedArray> read_array_file(const std::filesystem::path& path, std::string* manifest) {
  std::unique_ptr<detail::MappedFile> f;
  try {
    f = std::make_unique<detail::MappedFile>(path.string());
  } catch (const Error& e) {
    bad_file(path.string(), e.message());
  }
  const std::span<const std::byte> bytes(f->data(), static_cast<std::size_t>(f->size()));
  const std::string label = path.string();
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "PK", 2) == 0) return read_npz(bytes, label, manifest);
  if (path.extension() == ".npy") {
    return {{path.stem().string(), parse_npy(bytes, label)}};
  }
  return read_safetensors(bytes, label, manifest);
}

namespace {

// A name as an export's manifest holds it: the manifest's JSON writer turns bytes that are not
// UTF-8 into U+FFFD, so a tensor name with stray bytes must be compared in that form.
std::string as_written_in_json(std::string_view name) {
  std::string text;
  detail::JsonWriter(text).value(name);
  return nlohmann::json::parse(text).get<std::string>();
}

}  // namespace

std::vector<ValueUpdate> updates_from_export(const Model& model, const std::filesystem::path& file,
                                             const std::filesystem::path& manifest_file) {
  std::string manifest_text;
  std::vector<NamedArray> arrays = read_array_file(file, &manifest_text);
  if (!manifest_file.empty()) {
    manifest_text.clear();
    if (manifest_file.extension() == ".json") {
      std::ifstream in(manifest_file, std::ios::binary);
      if (!in) bad_file(manifest_file.string(), "cannot read");
      manifest_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
      (void)read_array_file(manifest_file, &manifest_text);
    }
    if (manifest_text.empty()) bad_file(manifest_file.string(), "holds no litelens manifest");
  }
  nlohmann::json manifest;
  Framework layout = Framework::tflite;
  if (!manifest_text.empty()) {
    try {
      manifest = nlohmann::json::parse(manifest_text);
      if (manifest.contains("layout") && manifest["layout"].is_string())
        layout = framework_from_name(manifest["layout"].get<std::string>());
    } catch (const std::exception& e) {
      bad_file(manifest_file.empty() ? file.string() : manifest_file.string(), fmt::format("unreadable manifest ({})", e.what()));
    }
  }
  const nlohmann::json* entries = manifest.is_object() && manifest.contains("arrays") ? &manifest["arrays"] : nullptr;

  std::vector<ValueUpdate> out;
  for (auto& a : arrays) {
    ValueUpdate u;
    u.selector = a.key;
    u.source = fmt::format("{}:{}", file.filename().string(), a.key);
    u.values = std::move(a.values);
    if (entries && entries->contains(a.key)) {
      const auto& e = (*entries)[a.key];
      u.layout = layout;
      u.quantize = e.value("values", "stored") == "dequantized";
      // The manifest must describe this model: the key's stored tensor and its name.
      const PatchTarget t = resolve_selector(model, a.key);
      const int want = e.value("stored_tensor", -1);
      const std::string want_name = e.value("name", "");
      const int have = t.tensor;
      const std::string have_name = have >= 0 ? std::string(model.subgraph(t.subgraph).tensor(have).name()) : "";
      if (want != have || (want_name != have_name && want_name != as_written_in_json(have_name)))
        throw PatchError(Kind::manifest_mismatch,
                         fmt::format("{}: the manifest says '{}' is stored in tensor #{} '{}', but in {} it is #{} '{}'; "
                                     "was the export made from another model?",
                                     file.string(), a.key, want, want_name, model.label(), have, have_name));
    }
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace litelens
