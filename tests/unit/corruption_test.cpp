// The corruption matrix: every way docs/threat-model.md lists for a hostile or broken .tflite,
// applied to small valid models (fuzz/model_zoo.h) and to real ones, each asserting the specific
// ErrorKind (or the warning code for oddities the runtime tolerates). Semantically bad files
// come from the object API; structural damage from byte patches. Every case that opens is then
// walked completely (fuzz/walk.h). With LITELENS_CASE_DIR set, every case is also written out
// for the CLI matrix (tests/corruption/cli_matrix.py). Random sweeps: hardening_sweep_test.cpp.
#include <flatbuffers/flexbuffers.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <limits>

#include "hardening_support.h"
#include "litelens/metadata.h"
#include "litelens/model.h"
#include "metadata_cases.h"
#include "model_builder.h"
#include "model_zoo.h"

namespace litelens::hardening {
namespace {

using namespace tflite;
using litelens::testing::conv_model;
using litelens::testing::to_bytes;

constexpr auto kMax32 = std::numeric_limits<std::int32_t>::max();

Bytes edit(ModelBuilder b, const std::function<void(ModelBuilder&)>& fn) {
  fn(b);
  return b.finish();
}

// Locations inside a packed model.
const tflite::Tensor* tensor_at(const Bytes& b, int sg, int t) { return root(b)->subgraphs()->Get(sg)->tensors()->Get(t); }
const tflite::Operator* op_at(const Bytes& b, int sg, int o) { return root(b)->subgraphs()->Get(sg)->operators()->Get(o); }
const tflite::Buffer* buffer_at(const Bytes& b, int i) { return root(b)->buffers()->Get(i); }

Bytes with_payload_at_end(Bytes fb, const std::vector<std::uint8_t>& payload, std::size_t& offset) {
  fb.resize(fb.size() + (16 - fb.size() % 16), std::byte{0});
  offset = fb.size();
  for (auto v : payload) fb.push_back(static_cast<std::byte>(v));
  return fb;
}

std::uint64_t value_bytes(const Value& v) {
  std::uint64_t n = 1;
  if (v.is_string()) n += v.as_string().size();
  if (v.is_list())
    for (const auto& item : v.as_list()) n += value_bytes(item);
  if (v.is_map())
    for (const auto& [k, item] : v.as_map()) n += k.size() + value_bytes(item);
  return n;
}

// ---- 0. The starting points --------------------------------------------------------------

TEST(corruption_test, base_models_are_clean) {
  for (const auto& m : zoo()) {
    const Expect e = m.name == "odd" ? opens("unknown_operator") : opens();
    EXPECT_CASE("base_" + m.name, m.bytes, e);
  }
  const Model conv = Model::from_bytes(zoo()[0].bytes);
  EXPECT_EQ(conv.subgraph(0).tensor_count(), 4u);
}

// ---- 1. Truncation, wrong identifier or version ------------------------------------------

TEST(corruption_test, truncated_header) {
  const Bytes conv = conv_model().finish();
  for (std::size_t n = 0; n < 8; ++n)
    EXPECT_CASE("trunc_header_" + std::to_string(n), Bytes(conv.begin(), conv.begin() + n), fails(ErrorKind::truncated));
  // The first bytes past the header: the verifier cannot find the root table.
  for (std::size_t n : {8, 9, 12, 16, 31})
    EXPECT_CASE("trunc_after_header_" + std::to_string(n), Bytes(conv.begin(), conv.begin() + n),
                fails(ErrorKind::invalid_flatbuffer));
}

TEST(corruption_test, wrong_identifier) {
  const Bytes conv = conv_model().finish();
  for (const auto& [name, id] : std::vector<std::pair<std::string, std::string>>{
           {"tfl2", "TFL2"}, {"lower", "tfl3"}, {"zeros", std::string(4, '\0')}, {"gguf", "GGUF"}}) {
    Bytes b = conv;
    std::memcpy(b.data() + 4, id.data(), 4);
    EXPECT_CASE("identifier_" + name, b, fails(ErrorKind::bad_identifier));
  }
  // A size-prefixed FlatBuffer has its identifier 4 bytes later.
  Bytes prefixed(4);
  put<std::uint32_t>(prefixed, 0, static_cast<std::uint32_t>(conv.size()));
  prefixed.insert(prefixed.end(), conv.begin(), conv.end());
  EXPECT_CASE("identifier_size_prefixed", prefixed, fails(ErrorKind::bad_identifier));
  // Other files people mistake for models.
  std::string text = "this is not a model, just some text that is long enough\n";
  EXPECT_CASE("identifier_text_file", Bytes(reinterpret_cast<const std::byte*>(text.data()),
                                            reinterpret_cast<const std::byte*>(text.data() + text.size())),
              fails(ErrorKind::bad_identifier));
  Bytes zip = zoo()[2].bytes;  // conv_zip: the archive alone
  zip.erase(zip.begin(), zip.begin() + static_cast<std::ptrdiff_t>(conv.size()));
  EXPECT_CASE("identifier_zip_file", zip, fails(ErrorKind::bad_identifier));
}

TEST(corruption_test, wrong_version) {
  for (std::uint32_t v : {0u, 1u, 2u, 4u, 0xffffffffu})
    EXPECT_CASE("version_" + std::to_string(v), edit(conv_model(), [v](ModelBuilder& b) { b.model().version = v; }),
                fails(ErrorKind::bad_version));
  Bytes b = conv_model().finish();
  put<std::uint32_t>(b, field_at(b, root(b), tflite::Model::VT_VERSION), 30);
  EXPECT_CASE("version_patched_30", b, fails(ErrorKind::bad_version));
}

// ---- 2. Offsets outside the file, or pointing back into themselves -----------------------

TEST(corruption_test, root_offset_outside_file) {
  const Bytes conv = conv_model().finish();
  const auto size = static_cast<std::uint32_t>(conv.size());
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::uint32_t>>{
           {"past_end", size + 100}, {"at_end", size}, {"last_bytes", size - 2}, {"max", 0xfffffff0u}, {"unaligned", 1}}) {
    Bytes b = conv;
    put<std::uint32_t>(b, 0, value);
    EXPECT_CASE("root_offset_" + name, b, fails(ErrorKind::invalid_flatbuffer));
  }
}

TEST(corruption_test, vtable_outside_file) {
  const Bytes conv = conv_model().finish();
  const std::size_t table = pos(conv, root(conv));
  const std::size_t vtable = pos(conv, as_table(root(conv))->GetVTable());
  Bytes before_start = conv;
  put<std::int32_t>(before_start, table, static_cast<std::int32_t>(table + 64));
  EXPECT_CASE("vtable_before_file_start", before_start, fails(ErrorKind::invalid_flatbuffer));
  Bytes past_end = conv;
  put<std::int32_t>(past_end, table, -static_cast<std::int32_t>(conv.size()));
  EXPECT_CASE("vtable_past_file_end", past_end, fails(ErrorKind::invalid_flatbuffer));
  Bytes odd = conv;
  put<std::uint16_t>(odd, vtable, 7);
  EXPECT_CASE("vtable_odd_size", odd, fails(ErrorKind::invalid_flatbuffer));
  Bytes huge = conv;
  put<std::uint16_t>(huge, vtable, 0xfffe);
  EXPECT_CASE("vtable_huge_size", huge, fails(ErrorKind::invalid_flatbuffer));
  // A field whose voffset points far past the table's own bytes.
  Bytes field_past = conv;
  put<std::uint16_t>(field_past, vtable + tflite::Model::VT_SUBGRAPHS, 0xfff0);
  EXPECT_CASE("vtable_field_past_end", field_past, fails(ErrorKind::invalid_flatbuffer));
}

TEST(corruption_test, offsets_pointing_back_into_themselves) {
  const Bytes conv = conv_model().finish();
  // A uoffset of 0 would make an object start at the offset itself; the verifier refuses that
  // for the root and for every table, vector and string field.
  Bytes root_self = conv;
  put<std::uint32_t>(root_self, 0, 0);
  EXPECT_CASE("self_root_offset_zero", root_self, fails(ErrorKind::invalid_flatbuffer));
  Bytes subgraphs_self = conv;
  put<std::uint32_t>(subgraphs_self, field_at(conv, root(conv), tflite::Model::VT_SUBGRAPHS), 0);
  EXPECT_CASE("self_subgraphs_vector", subgraphs_self, fails(ErrorKind::invalid_flatbuffer));
  Bytes buffers_self = conv;
  put<std::uint32_t>(buffers_self, field_at(conv, root(conv), tflite::Model::VT_BUFFERS), 0);
  EXPECT_CASE("self_buffers_vector", buffers_self, fails(ErrorKind::invalid_flatbuffer));
  // An element of a vector of tables is not checked that way: 0 makes the element its own
  // table and vtable (of size 0), an empty tensor.
  Bytes tensor_self = conv;
  const auto* tensors = root(conv)->subgraphs()->Get(0)->tensors();
  put<std::uint32_t>(tensor_self, pos(conv, tensors->Data()), 0);
  EXPECT_CASE("self_tensor_element", tensor_self, opens());
  // An offset that wraps around the address space.
  Bytes wraps = conv;
  put<std::uint32_t>(wraps, field_at(conv, root(conv), tflite::Model::VT_SUBGRAPHS), 0xffffffffu);
  EXPECT_CASE("self_offset_wraps", wraps, fails(ErrorKind::invalid_flatbuffer));
  // A table whose vtable is inside the table itself: whatever it decodes to, nothing crashes.
  for (std::int32_t soffset : {0, -4, -8, 4}) {
    Bytes inside = conv;
    put<std::int32_t>(inside, pos(conv, tensors->Get(1)), soffset);
    EXPECT_CASE("self_vtable_" + std::to_string(soffset + 8), inside, anything());
  }
}

// Builds a model whose `subgraphs` vector holds n_sg references to one subgraph table whose
// `tensors` vector holds n_t references to one tensor table with a shape of `rank` ones.
Bytes shared_tables_model(int n_sg, int n_t, int rank) {
  flatbuffers::FlatBufferBuilder fbb;
  auto shape = fbb.CreateVector(std::vector<std::int32_t>(static_cast<std::size_t>(rank), 1));
  auto tensor = CreateTensor(fbb, shape, TensorType_FLOAT32, 0, fbb.CreateString("t"));
  auto tensors = fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::Tensor>>(static_cast<std::size_t>(n_t), tensor));
  auto sg = CreateSubGraph(fbb, tensors, 0, 0, 0, fbb.CreateString("g"));
  auto subgraphs = fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::SubGraph>>(static_cast<std::size_t>(n_sg), sg));
  auto buffers = fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::Buffer>>{CreateBuffer(fbb)});
  fbb.Finish(CreateModel(fbb, 3, 0, subgraphs, 0, buffers), ModelIdentifier());
  return finished(fbb);
}

// n_ops references to one RESHAPE operator whose options hold a new_shape of `len` values.
Bytes shared_options_model(int n_ops, int len) {
  flatbuffers::FlatBufferBuilder fbb;
  auto options = CreateReshapeOptions(fbb, fbb.CreateVector(std::vector<std::int32_t>(static_cast<std::size_t>(len), 1)));
  auto op = CreateOperator(fbb, 0, fbb.CreateVector(std::vector<std::int32_t>{0}),
                           fbb.CreateVector(std::vector<std::int32_t>{1}), BuiltinOptions_ReshapeOptions, options.Union());
  auto ops = fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::Operator>>(static_cast<std::size_t>(n_ops), op));
  auto t0 = CreateTensor(fbb, fbb.CreateVector(std::vector<std::int32_t>{4}), TensorType_FLOAT32, 0, fbb.CreateString("in"));
  auto t1 = CreateTensor(fbb, fbb.CreateVector(std::vector<std::int32_t>{4}), TensorType_FLOAT32, 0, fbb.CreateString("out"));
  auto sg = CreateSubGraph(fbb, fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::Tensor>>{t0, t1}), 0, 0, ops);
  auto codes = fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::OperatorCode>>{
      CreateOperatorCode(fbb, BuiltinOperator_RESHAPE, 0, 1, BuiltinOperator_RESHAPE)});
  auto buffers = fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::Buffer>>{CreateBuffer(fbb)});
  fbb.Finish(CreateModel(fbb, 3, codes, fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::SubGraph>>{sg}), 0, buffers),
             ModelIdentifier());
  return finished(fbb);
}

TEST(corruption_test, shared_tables_cannot_amplify) {
  // FlatBuffers allows many offsets to one table. Without a bound, a few kilobytes describe
  // 100,000 tensors, a shape walked 5,000 times, or one options vector decoded per operator.
  const auto started = std::chrono::steady_clock::now();
  EXPECT_CASE("shared_subgraph_and_tensor_tables", shared_tables_model(100, 1000, 2), fails(ErrorKind::invalid_flatbuffer));
  EXPECT_CASE("shared_huge_shape_vector", shared_tables_model(1, 5000, 100000), fails(ErrorKind::invalid_flatbuffer));
  EXPECT_CASE("shared_options_table", shared_options_model(5000, 50000), fails(ErrorKind::invalid_flatbuffer));
  // Sharing as converters do it (a few references, one empty buffer table) stays fine.
  EXPECT_CASE("shared_few_references", shared_tables_model(2, 3, 4), opens());
  {
    flatbuffers::FlatBufferBuilder fbb;
    auto empty = CreateBuffer(fbb);
    std::vector<flatbuffers::Offset<tflite::Tensor>> tensors;
    for (int i = 0; i < 1000; ++i)
      tensors.push_back(CreateTensor(fbb, fbb.CreateVector(std::vector<std::int32_t>{1, 8}), TensorType_FLOAT32,
                                     static_cast<std::uint32_t>(i + 1), fbb.CreateString("t" + std::to_string(i))));
    auto sg = CreateSubGraph(fbb, fbb.CreateVector(tensors));
    auto buffers = fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::Buffer>>(1001, empty));
    fbb.Finish(CreateModel(fbb, 3, 0, fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::SubGraph>>{sg}), 0, buffers),
               ModelIdentifier());
    EXPECT_CASE("shared_empty_buffer_table", finished(fbb), opens());
  }
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_LT(seconds, 30.0) << "amplification cases must be refused quickly";
}

TEST(corruption_test, shared_payloads_cannot_amplify) {
  // Custom options stored after the FlatBuffer are named by plain integers: 64 operators naming
  // one 256 KiB payload would be verified and decoded 64 times.
  {
    ModelBuilder b = custom_model();
    for (int i = 1; i < 64; ++i) b.add_operator(0, 0, {0}, {1});
    flexbuffers::Builder fbb;
    std::vector<std::uint8_t> blob(256 << 10, 7);
    fbb.Blob(blob.data(), blob.size());
    fbb.Finish();
    const auto payload = fbb.GetBuffer();
    for (int i = 0; i < 64; ++i) {
      auto& op = b.op(0, i);
      op.custom_options.clear();
      op.large_custom_options_offset = 1;
      op.large_custom_options_size = 1;
    }
    const std::size_t fb_size = packed(b.model()).size();
    const std::size_t start = fb_size + (16 - fb_size % 16);
    for (int i = 0; i < 64; ++i) {
      b.op(0, i).large_custom_options_offset = start;
      b.op(0, i).large_custom_options_size = payload.size();
    }
    std::size_t offset = 0;
    const Bytes bytes = with_payload_at_end(packed(b.model()), payload, offset);
    ASSERT_EQ(offset, start);
    EXPECT_CASE("shared_outside_custom_options", bytes, fails(ErrorKind::invalid_flatbuffer));
  }
  // Many tensors naming one STRING buffer: checked once, opens.
  {
    ModelBuilder b;
    const int sg = b.add_subgraph();
    std::vector<std::uint8_t> strings(4 * (2000 + 2) + 2000);
    {
      const auto w = [&](std::size_t at, std::int32_t v) { std::memcpy(strings.data() + at, &v, 4); };
      w(0, 2000);
      for (int i = 0; i <= 2000; ++i) w(4 + 4 * static_cast<std::size_t>(i), 4 * (2000 + 2) + i);
      for (std::size_t i = 4 * 2002; i < strings.size(); ++i) strings[i] = 'a';
    }
    const int buf = b.add_buffer(strings);
    for (int i = 0; i < 2000; ++i) b.add_tensor(sg, "s" + std::to_string(i), {2000}, TensorType_STRING, buf);
    EXPECT_CASE("shared_string_buffer", b.finish(), opens());
  }
  // A FlexBuffer map whose 5,000 keys are all one 20,000-byte key (45 KB that decoded to 100 MB
  // of key strings before decoding was bounded by bytes as well as nodes).
  {
    flexbuffers::Builder fbb;
    const std::string big(20000, 'k');
    fbb.Map([&] {
      for (int i = 0; i < 5000; ++i) fbb.Int(big.c_str(), i);
    });
    fbb.Finish();
    const auto payload = fbb.GetBuffer();
    const Bytes bytes = edit(custom_model(), [&](ModelBuilder& b) { b.op(0, 0).custom_options = payload; });
    EXPECT_CASE("flexbuffer_shared_keys", bytes, opens());
    const Model m = Model::from_bytes(bytes);
    EXPECT_LE(value_bytes(m.subgraph(0).op(0).options()), 16 * payload.size() + 512)
        << "decoded options must stay proportional to the payload (" << payload.size() << " bytes)";
  }
  // Strings shared by the builder: a few references decode (bounded); many exceed the
  // FlexBuffers verifier's depth limit (its reuse tracker counts each reuse as a level), and the
  // options stay opaque bytes.
  for (const auto& [refs, expect] : {std::pair{50, opens()}, std::pair{5000, opens("custom_options_opaque")}}) {
    flexbuffers::Builder fbb(512, flexbuffers::BUILDER_FLAG_SHARE_KEYS_AND_STRINGS);
    const std::string big(100000, 'x');
    fbb.Vector([&] {
      for (int i = 0; i < refs; ++i) fbb.String(big);
    });
    fbb.Finish();
    const auto payload = fbb.GetBuffer();
    const Bytes bytes = edit(custom_model(), [&](ModelBuilder& b) { b.op(0, 0).custom_options = payload; });
    EXPECT_CASE("flexbuffer_shared_strings_" + std::to_string(refs), bytes, expect);
    const Model m = Model::from_bytes(bytes);
    EXPECT_LE(value_bytes(m.subgraph(0).op(0).options()), 16 * payload.size() + 512);
  }
  // A FlexBuffer vector whose elements all reuse one inner vector.
  {
    flexbuffers::Builder fbb;
    const auto outer = fbb.StartVector();
    const auto inner = fbb.StartVector();
    for (int i = 0; i < 1000; ++i) fbb.Int(i);
    fbb.EndVector(inner, false, false);
    const auto shared = fbb.LastValue();
    for (int i = 1; i < 1000; ++i) fbb.ReuseValue(shared);
    fbb.EndVector(outer, false, false);
    fbb.Finish();
    const auto payload = fbb.GetBuffer();
    const Bytes bytes = edit(custom_model(), [&](ModelBuilder& b) { b.op(0, 0).custom_options = payload; });
    EXPECT_CASE("flexbuffer_shared_vectors", bytes, opens_any());
    const Model m = Model::from_bytes(bytes);
    EXPECT_LE(value_bytes(m.subgraph(0).op(0).options()), 16 * payload.size() + 512);
  }
}

// ---- 3. Vectors longer than the file -----------------------------------------------------

TEST(corruption_test, vectors_longer_than_file) {
  const Bytes conv = conv_model().finish();
  const auto* m = root(conv);
  const auto patch_len = [&](const std::string& name, const void* vec, std::uint32_t len) {
    Bytes b = conv;
    put<std::uint32_t>(b, pos(conv, vec), len);
    EXPECT_CASE("long_vector_" + name, b, fails(ErrorKind::invalid_flatbuffer));
  };
  patch_len("buffers", m->buffers(), 0x3fffffff);
  patch_len("subgraphs", m->subgraphs(), static_cast<std::uint32_t>(conv.size()));
  patch_len("buffer_data", m->buffers()->Get(1)->data(), static_cast<std::uint32_t>(conv.size()));
  patch_len("buffer_data_max", m->buffers()->Get(1)->data(), 0xffffffffu);
  patch_len("shape", tensor_at(conv, 0, 1)->shape(), kMax32);
  patch_len("tensor_name", tensor_at(conv, 0, 1)->name(), 1u << 30);
  patch_len("operator_inputs", op_at(conv, 0, 0)->inputs(), 0x40000000);
  patch_len("description", m->description(), static_cast<std::uint32_t>(conv.size()));
}

// ---- 4. Out-of-range indices -------------------------------------------------------------

TEST(corruption_test, tensor_index_out_of_range) {
  const auto bad = [](const std::string& name, const std::function<void(ModelBuilder&)>& fn) {
    EXPECT_CASE("tensor_index_" + name, edit(conv_model(), fn), fails(ErrorKind::index_out_of_range));
  };
  bad("op_input", [](ModelBuilder& b) { b.op(0, 0).inputs[1] = 4; });
  bad("op_input_minus2", [](ModelBuilder& b) { b.op(0, 0).inputs[0] = -2; });
  bad("op_input_min", [](ModelBuilder& b) { b.op(0, 0).inputs[2] = std::numeric_limits<std::int32_t>::min(); });
  bad("op_output", [](ModelBuilder& b) { b.op(0, 0).outputs[0] = 99; });
  bad("op_intermediate", [](ModelBuilder& b) { b.op(0, 0).intermediates = {7}; });
  bad("subgraph_input", [](ModelBuilder& b) { b.subgraph(0).inputs = {4}; });
  bad("subgraph_output", [](ModelBuilder& b) { b.subgraph(0).outputs = {-3}; });
  // -1 marks an absent optional input: fine.
  EXPECT_CASE("tensor_index_optional_input",
              edit(conv_model(), [](ModelBuilder& b) { b.op(0, 0).inputs[2] = -1; }), opens());
}

TEST(corruption_test, buffer_index_out_of_range) {
  EXPECT_CASE("buffer_index_3", edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 1).buffer = 3; }),
              fails(ErrorKind::index_out_of_range));
  EXPECT_CASE("buffer_index_max", edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 0).buffer = 0xffffffffu; }),
              fails(ErrorKind::index_out_of_range));
  EXPECT_CASE("buffer_index_no_buffers", edit(conv_model(), [](ModelBuilder& b) { b.model().buffers.clear(); }),
              fails(ErrorKind::index_out_of_range));
}

TEST(corruption_test, opcode_index_out_of_range) {
  EXPECT_CASE("opcode_index_1", edit(conv_model(), [](ModelBuilder& b) { b.op(0, 0).opcode_index = 1; }),
              fails(ErrorKind::index_out_of_range));
  EXPECT_CASE("opcode_index_max", edit(conv_model(), [](ModelBuilder& b) { b.op(0, 0).opcode_index = 0xffffffffu; }),
              fails(ErrorKind::index_out_of_range));
  EXPECT_CASE("opcode_index_no_codes", edit(conv_model(), [](ModelBuilder& b) { b.model().operator_codes.clear(); }),
              fails(ErrorKind::index_out_of_range));
}

TEST(corruption_test, subgraph_index_out_of_range) {
  const auto bad = [](const std::string& name, const std::function<void(ModelBuilder&)>& fn) {
    EXPECT_CASE("subgraph_index_" + name, edit(control_flow_model(), fn), fails(ErrorKind::index_out_of_range));
  };
  bad("while_cond", [](ModelBuilder& b) { b.op(0, 0).builtin_options.AsWhileOptions()->cond_subgraph_index = 4; });
  bad("while_body_negative", [](ModelBuilder& b) { b.op(0, 0).builtin_options.AsWhileOptions()->body_subgraph_index = -1; });
  bad("if_then", [](ModelBuilder& b) { b.op(0, 1).builtin_options.AsIfOptions()->then_subgraph_index = 99; });
  bad("if_else_max", [](ModelBuilder& b) { b.op(0, 1).builtin_options.AsIfOptions()->else_subgraph_index = kMax32; });
  bad("call_once", [](ModelBuilder& b) { b.op(0, 2).builtin_options.AsCallOnceOptions()->init_subgraph_index = 1000; });
  bad("composite", [](ModelBuilder& b) {
    b.op(0, 3).builtin_options_2.AsStableHLOCompositeOptions()->decomposition_subgraph_index = 4;
  });
  EXPECT_CASE("subgraph_index_signature",
              edit(signature_model(), [](ModelBuilder& b) { b.model().signature_defs[0]->subgraph_index = 1; }),
              fails(ErrorKind::index_out_of_range));
}

TEST(corruption_test, other_indices_out_of_range) {
  EXPECT_CASE("index_signature_tensor",
              edit(signature_model(), [](ModelBuilder& b) { b.model().signature_defs[0]->outputs[0]->tensor_index = 4; }),
              fails(ErrorKind::index_out_of_range));
  EXPECT_CASE("index_metadata_buffer",
              edit(signature_model(), [](ModelBuilder& b) { b.model().metadata[0]->buffer = 99; }),
              fails(ErrorKind::index_out_of_range));
  EXPECT_CASE("index_legacy_metadata_buffer",
              edit(signature_model(), [](ModelBuilder& b) { b.model().metadata_buffer = {99}; }),
              opens("metadata_buffer_index"));
  EXPECT_CASE("index_blockwise_scales", edit(subbyte_model(), [](ModelBuilder& b) {
                b.tensor(0, 1).quantization->details.AsBlockwiseQuantization()->scales = 6;
              }),
              fails(ErrorKind::index_out_of_range));
  EXPECT_CASE("index_blockwise_zero_points", edit(subbyte_model(), [](ModelBuilder& b) {
                b.tensor(0, 1).quantization->details.AsBlockwiseQuantization()->zero_points = -5;
              }),
              fails(ErrorKind::index_out_of_range));
  EXPECT_CASE("index_external_buffer_id",
              edit(odd_model(), [](ModelBuilder& b) { b.tensor(0, 5).external_buffer = 0x80000001u; }),
              fails(ErrorKind::index_out_of_range));
  EXPECT_CASE("index_external_buffer_group",
              edit(odd_model(), [](ModelBuilder& b) { b.model().external_buffers[0]->group = 1; }),
              fails(ErrorKind::index_out_of_range));
}

// ---- 5. Negative or huge dimensions ------------------------------------------------------

TEST(corruption_test, negative_and_huge_dimensions) {
  EXPECT_CASE("dims_negative_constant", edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 1).shape = {-4, 3, 3, 3}; }),
              fails(ErrorKind::invalid_shape));
  EXPECT_CASE("dims_negative_activation", edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 0).shape = {-1, 8, 8, 3}; }),
              opens("negative_dim"));
  EXPECT_CASE("dims_product_overflows", edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 0).shape = {kMax32, kMax32, kMax32}; }),
              fails(ErrorKind::invalid_shape));
  EXPECT_CASE("dims_product_overflows_constant",
              edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 2).shape = {65536, 65536, 65536, 65536}; }),
              fails(ErrorKind::invalid_shape));
  // 2^62 elements fit in 64 bits: a declared activation shape is not an allocation.
  EXPECT_CASE("dims_huge_activation", edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 3).shape = {kMax32, kMax32}; }),
              opens());
  EXPECT_CASE("dims_huge_constant_small_data",
              edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 2).shape = {65536, 65536}; }),
              fails(ErrorKind::size_mismatch));
  // Element counts that fit int64 but whose byte counts overflow 64 bits (2^62 float32, 2^61 float64).
  EXPECT_CASE("dims_bytes_overflow_float32",
              edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 2).shape = {1 << 30, 1 << 30, 4}; }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("dims_bytes_overflow_float64", edit(conv_model(), [](ModelBuilder& b) {
                b.tensor(0, 2).shape = {1 << 30, 1 << 30, 2};
                b.tensor(0, 2).type = TensorType_FLOAT64;
              }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("dims_bytes_overflow_complex128", edit(conv_model(), [](ModelBuilder& b) {
                b.tensor(0, 2).shape = {1 << 30, 1 << 30, 1};
                b.tensor(0, 2).type = TensorType_COMPLEX128;
              }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("dims_zero_extent", edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 3).shape = {0, 5}; }), opens());
  std::vector<std::int32_t> deep(100000, 1);
  deep[0] = 4;
  EXPECT_CASE("dims_rank_100000", edit(conv_model(), [&](ModelBuilder& b) { b.tensor(0, 2).shape = deep; }), opens());
  EXPECT_CASE("dims_signature_rank",
              edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 0).shape_signature = {-1, 8}; }),
              opens("shape_signature_rank"));
}

// ---- 6. Byte lengths that disagree with shapes -------------------------------------------

TEST(corruption_test, byte_length_disagrees_with_shape) {
  EXPECT_CASE("length_one_byte_short", edit(conv_model(), [](ModelBuilder& b) { b.buffer(1).data.pop_back(); }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("length_one_byte_long", edit(conv_model(), [](ModelBuilder& b) { b.buffer(2).data.push_back(0); }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("length_scalar_two_floats", edit(conv_model(), [](ModelBuilder& b) {
                b.tensor(0, 2).shape = {};
                b.buffer(2).data.resize(8);
              }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("length_float16_odd", edit(conv_model(), [](ModelBuilder& b) {
                b.tensor(0, 2).type = TensorType_FLOAT16;
                b.buffer(2).data.resize(7);
              }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("length_bias_empty_is_not_constant",
              edit(conv_model(), [](ModelBuilder& b) { b.buffer(2).data.clear(); }), opens());
  EXPECT_CASE("length_sparse_values", edit(sparse_model(), [](ModelBuilder& b) { b.buffer(1).data.resize(44); }),
              fails(ErrorKind::size_mismatch));
  // The size field of a buffer stored after the FlatBuffer.
  auto outside = conv_model();
  outside.store_outside(1);
  outside.store_outside(2);
  Bytes b = outside.finish();
  put<std::uint64_t>(b, field_at(b, buffer_at(b, 1), tflite::Buffer::VT_SIZE), 4 * 108 - 4);
  EXPECT_CASE("length_outside_size_field", b, fails(ErrorKind::size_mismatch));
  // Types without a fixed size cannot be checked: the runtime tolerates data there, so do we.
  EXPECT_CASE("length_unknown_dtype_with_data",
              edit(conv_model(), [](ModelBuilder& b2) { b2.tensor(0, 2).type = static_cast<TensorType>(100); }),
              opens("data_without_size"));
  EXPECT_CASE("length_resource_with_data",
              edit(conv_model(), [](ModelBuilder& b2) { b2.tensor(0, 2).type = TensorType_RESOURCE; }),
              opens("data_without_size"));
}

TEST(corruption_test, subbyte_lengths) {
  EXPECT_CASE("subbyte_int4_unpacked", edit(subbyte_model(), [](ModelBuilder& b) { b.buffer(1).data.resize(24); }),
              opens("unpacked_int4"));
  EXPECT_CASE("subbyte_int4_13", edit(subbyte_model(), [](ModelBuilder& b) { b.buffer(1).data.resize(13); }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("subbyte_int4_11", edit(subbyte_model(), [](ModelBuilder& b) { b.buffer(1).data.resize(11); }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("subbyte_int2_short", edit(subbyte_model(), [](ModelBuilder& b) { b.buffer(3).data.resize(1); }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("subbyte_int2_unpacked", edit(subbyte_model(), [](ModelBuilder& b) { b.buffer(3).data.resize(5); }),
              fails(ErrorKind::size_mismatch));
  EXPECT_CASE("subbyte_uint4_unpacked", edit(subbyte_model(), [](ModelBuilder& b) { b.buffer(4).data.resize(3); }),
              opens("unpacked_int4"));
  EXPECT_CASE("subbyte_int4_one_element", edit(subbyte_model(), [](ModelBuilder& b) {
                b.tensor(0, 5).shape = {1};
                b.tensor(0, 5).type = TensorType_INT4;
                b.buffer(4).data.resize(1);
              }),
              opens());
}

// ---- 7. Quantization vectors of the wrong length -----------------------------------------

TEST(corruption_test, quantization_vector_lengths) {
  const auto q = [](const std::string& name, const std::function<void(QuantizationParametersT&)>& fn, const Expect& e) {
    EXPECT_CASE("quant_" + name, edit(quantized_model(), [&](ModelBuilder& b) { fn(*b.tensor(0, 1).quantization); }), e);
  };
  q("too_few_scales", [](auto& p) { p.scale.pop_back(); p.zero_point.pop_back(); }, fails(ErrorKind::invalid_quantization));
  q("zero_points_2_of_4", [](auto& p) { p.zero_point.resize(2); }, fails(ErrorKind::invalid_quantization));
  q("zero_points_5_of_4", [](auto& p) { p.zero_point.resize(5); }, fails(ErrorKind::invalid_quantization));
  q("one_shared_zero_point", [](auto& p) { p.zero_point.resize(1); }, opens("zero_point_count"));
  q("no_zero_points", [](auto& p) { p.zero_point.clear(); }, opens("zero_point_count"));
  q("extra_scales", [](auto& p) { p.scale.push_back(1); p.zero_point.push_back(0); }, opens("extra_scales"));
  q("axis_past_rank", [](auto& p) { p.quantized_dimension = 4; }, fails(ErrorKind::invalid_quantization));
  q("axis_negative", [](auto& p) { p.quantized_dimension = -1; }, fails(ErrorKind::invalid_quantization));
  q("axis_max", [](auto& p) { p.quantized_dimension = kMax32; }, fails(ErrorKind::invalid_quantization));
  q("axis_smaller_extent", [](auto& p) { p.quantized_dimension = 1; }, opens("extra_scales"));
  q("only_min_max", [](auto& p) { p.scale.clear(); p.zero_point.clear(); p.min = {-1}; p.max = {1}; }, opens());
  EXPECT_CASE("quant_per_axis_on_scalar", edit(quantized_model(), [](ModelBuilder& b) {
                b.tensor(0, 2).shape = {};
                b.buffer(2).data.resize(4);
              }),
              opens("scales_on_scalar"));
  for (int size : {0, -3}) {
    EXPECT_CASE("quant_blockwise_block_" + std::to_string(size + 3), edit(subbyte_model(), [size](ModelBuilder& b) {
                  b.tensor(0, 1).quantization->details.AsBlockwiseQuantization()->block_size = size;
                }),
                fails(ErrorKind::invalid_quantization));
  }
  // Blockwise layouts other than the confirmed 2-D one open (the loader accepts them) with a warning.
  const auto blockwise = [](const std::function<void(ModelBuilder&, BlockwiseQuantizationT&)>& fn) {
    return edit(subbyte_model(), [&](ModelBuilder& b) { fn(b, *b.tensor(0, 1).quantization->details.AsBlockwiseQuantization()); });
  };
  EXPECT_CASE("quant_blockwise_ok", blockwise([](auto&, auto&) {}), opens());
  EXPECT_CASE("quant_blockwise_block_not_dividing", blockwise([](auto&, auto& bq) { bq.block_size = 4; }),
              opens("blockwise_layout"));
  EXPECT_CASE("quant_blockwise_scale_count", blockwise([](auto&, auto& bq) { bq.block_size = 3; }),
              opens("blockwise_layout"));
  EXPECT_CASE("quant_blockwise_rank_3", blockwise([](ModelBuilder& b, auto&) { b.tensor(0, 1).shape = {2, 2, 6}; }),
              opens("blockwise_layout"));
  EXPECT_CASE("quant_blockwise_integer_scales", blockwise([](ModelBuilder& b, auto&) {
                b.tensor(0, 2).type = TensorType_INT16;
              }),
              opens("blockwise_layout"));
  EXPECT_CASE("quant_blockwise_zero_point_count", blockwise([](auto&, auto& bq) { bq.zero_points = 4; }),
              opens("blockwise_layout"));
  const auto multi = [](const std::function<void(MultiAxisQuantizationT&)>& fn) {
    return edit(subbyte_model(), [&](ModelBuilder& b) {
      MultiAxisQuantizationT mq;
      mq.scales = 2;
      mq.zero_points = -1;
      mq.quantized_dimensions = {0};
      fn(mq);
      b.tensor(0, 1).quantization->details.Set(std::move(mq));
    });
  };
  EXPECT_CASE("quant_multi_axis_ok", multi([](auto&) {}), opens());
  EXPECT_CASE("quant_multi_axis_dim_past_rank", multi([](auto& mq) { mq.quantized_dimensions = {0, 2}; }),
              fails(ErrorKind::invalid_quantization));
  EXPECT_CASE("quant_multi_axis_negative_block", multi([](auto& mq) { mq.block_size = -1; }),
              fails(ErrorKind::invalid_quantization));
  EXPECT_CASE("quant_multi_axis_scales_index", multi([](auto& mq) { mq.scales = -1; }),
              fails(ErrorKind::index_out_of_range));
}

// A union tag whose table is absent passes the FlatBuffers verifier; readers must not assume the
// table is there. (Made by zeroing the table's vtable slot, which makes the field absent.)
TEST(corruption_test, union_tag_without_table) {
  const Bytes sub = subbyte_model().finish();
  const auto* q = tensor_at(sub, 0, 1)->quantization();
  {
    Bytes b = sub;
    put<std::uint16_t>(b, vtable_slot(sub, q, tflite::QuantizationParameters::VT_DETAILS), 0);
    EXPECT_CASE("union_blockwise_without_table", b, fails(ErrorKind::invalid_quantization));
    put<std::uint8_t>(b, field_at(sub, q, tflite::QuantizationParameters::VT_DETAILS_TYPE),
                      QuantizationDetails_MultiAxisQuantization);
    EXPECT_CASE("union_multi_axis_without_table", b, fails(ErrorKind::invalid_quantization));
    put<std::uint8_t>(b, field_at(sub, q, tflite::QuantizationParameters::VT_DETAILS_TYPE),
                      QuantizationDetails_CustomQuantization);
    EXPECT_CASE("union_custom_without_table", b, opens());
  }
  {
    Bytes b = sub;
    put<std::uint8_t>(b, field_at(sub, q, tflite::QuantizationParameters::VT_DETAILS_TYPE), 250);
    EXPECT_CASE("union_quantization_unknown_tag", b, opens());
  }
  const Bytes sparse = sparse_model().finish();
  const auto* level = tensor_at(sparse, 0, 1)->sparsity()->dim_metadata()->Get(1);
  {
    Bytes b = sparse;
    put<std::uint16_t>(b, vtable_slot(sparse, level, tflite::DimensionMetadata::VT_ARRAY_SEGMENTS), 0);
    EXPECT_CASE("union_sparse_segments_without_table", b, fails(ErrorKind::invalid_sparsity));
  }
  {
    Bytes b = sparse;
    put<std::uint8_t>(b, field_at(sparse, level, tflite::DimensionMetadata::VT_ARRAY_INDICES_TYPE), 9);
    EXPECT_CASE("union_sparse_indices_unknown_tag", b, fails(ErrorKind::invalid_sparsity));
  }
  const Bytes conv = conv_model().finish();
  const auto* op = op_at(conv, 0, 0);
  {
    Bytes b = conv;
    put<std::uint16_t>(b, vtable_slot(conv, op, tflite::Operator::VT_BUILTIN_OPTIONS), 0);
    EXPECT_CASE("union_options_without_table", b, opens());
  }
  {
    Bytes b = conv;
    put<std::uint8_t>(b, field_at(conv, op, tflite::Operator::VT_BUILTIN_OPTIONS_TYPE), 250);
    EXPECT_CASE("union_options_unknown_tag", b, opens());
  }
  {
    // The tag names another table type than the one stored: read as that type, bounded.
    Bytes b = conv;
    put<std::uint8_t>(b, field_at(conv, op, tflite::Operator::VT_BUILTIN_OPTIONS_TYPE), BuiltinOptions_ReshapeOptions);
    EXPECT_CASE("union_options_wrong_table", b, anything());
  }
}

// ---- 8. Malformed sparsity metadata ------------------------------------------------------

TEST(corruption_test, malformed_sparsity) {
  const auto sp = [](const std::string& name, const std::function<void(SparsityParametersT&, ModelBuilder&)>& fn,
                     const Expect& e) {
    EXPECT_CASE("sparsity_" + name, edit(sparse_model(), [&](ModelBuilder& b) { fn(*b.tensor(0, 1).sparsity, b); }), e);
  };
  const auto segments = [](SparsityParametersT& s) -> std::vector<std::int32_t>& {
    return s.dim_metadata[1]->array_segments.AsInt32Vector()->values;
  };
  const auto indices = [](SparsityParametersT& s) -> std::vector<std::int32_t>& {
    return s.dim_metadata[1]->array_indices.AsInt32Vector()->values;
  };
  const Expect bad = fails(ErrorKind::invalid_sparsity);
  sp("segments_decrease", [&](auto& s, auto&) { segments(s) = {0, 3, 2}; }, bad);
  sp("segments_start_at_1", [&](auto& s, auto&) { segments(s) = {1, 2, 3}; }, bad);
  sp("segments_negative", [&](auto& s, auto&) { segments(s) = {0, -1, 3}; }, bad);
  sp("segments_count", [&](auto& s, auto&) { segments(s) = {0, 3}; }, bad);
  sp("segments_last_vs_indices", [&](auto& s, auto&) { segments(s) = {0, 2, 2}; }, bad);
  sp("segments_huge", [&](auto& s, auto&) { segments(s) = {0, 2, kMax32}; }, bad);
  sp("indices_out_of_range", [&](auto& s, auto&) { indices(s) = {0, 1, 2}; }, bad);
  sp("indices_negative", [&](auto& s, auto&) { indices(s) = {0, -1, 1}; }, bad);
  sp("indices_count", [&](auto& s, auto&) { indices(s) = {0, 1}; }, bad);
  sp("traversal_repeats", [](auto& s, auto&) { s.traversal_order = {0, 0, 2, 3}; }, bad);
  sp("traversal_out_of_range", [](auto& s, auto&) { s.traversal_order = {0, 1, 2, 9}; }, bad);
  sp("traversal_short", [](auto& s, auto&) { s.traversal_order = {0}; }, bad);
  sp("traversal_permuted", [](auto& s, auto&) { s.traversal_order = {1, 0, 2, 3}; }, opens());
  sp("block_map_short", [](auto& s, auto&) { s.block_map = {0}; }, bad);
  sp("block_map_repeats", [](auto& s, auto&) { s.block_map = {0, 0}; }, bad);
  sp("block_map_out_of_range", [](auto& s, auto&) { s.block_map = {0, 5}; }, bad);
  sp("dense_size_wrong", [](auto& s, auto&) { s.dim_metadata[0]->dense_size = 3; }, bad);
  sp("block_size_zero", [](auto& s, auto&) { s.dim_metadata[2]->dense_size = 0; }, bad);
  sp("block_size_not_dividing", [](auto& s, auto&) { s.dim_metadata[3]->dense_size = 3; }, bad);
  sp("levels_missing", [](auto& s, auto&) { s.dim_metadata.pop_back(); }, bad);
  sp("stored_count_vs_data", [](auto&, auto& b) { b.buffer(1).data.resize(40); }, fails(ErrorKind::size_mismatch));
  EXPECT_CASE("sparsity_uint8_index_out_of_range", edit(sparse_model(), [](ModelBuilder& b) {
                b.tensor(0, 3).sparsity->dim_metadata[1]->array_indices.AsUint8Vector()->values = {2, 0, 4};
              }),
              bad);
  EXPECT_CASE("sparsity_uint16_segments", edit(sparse_model(), [](ModelBuilder& b) {
                Uint16VectorT seg;
                seg.values = {0, 1, 1, 3};
                b.tensor(0, 3).sparsity->dim_metadata[1]->array_segments.Set(std::move(seg));
              }),
              opens());
  // A dense shape far larger than the file: opens (nothing is allocated at open), and the walk
  // does not densify it.
  EXPECT_CASE("sparsity_huge_dense_shape", edit(sparse_model(), [](ModelBuilder& b) {
                b.tensor(0, 3).shape = {3, 1 << 30};
                b.tensor(0, 3).sparsity->dim_metadata[0]->dense_size = 3;
              }),
              opens());
  // Without data the parameters describe nothing stored: open does not check them.
  EXPECT_CASE("sparsity_broken_without_data", edit(sparse_model(), [&](ModelBuilder& b) {
                segments(*b.tensor(0, 1).sparsity) = {0, 3, 2};
                b.tensor(0, 1).buffer = 0;
              }),
              opens());
}

// ---- 9. Out-of-FlatBuffer buffers past the end, or overlapping ---------------------------

TEST(corruption_test, outside_buffers_past_end_or_overlapping) {
  auto builder = conv_model();
  builder.store_outside(1);
  builder.store_outside(2);
  const Bytes base = builder.finish();
  const auto* b1 = buffer_at(base, 1);
  const auto* b2 = buffer_at(base, 2);
  const std::size_t off1 = field_at(base, b1, tflite::Buffer::VT_OFFSET);
  const std::size_t size1 = field_at(base, b1, tflite::Buffer::VT_SIZE);
  const std::size_t off2 = field_at(base, b2, tflite::Buffer::VT_OFFSET);
  const std::uint64_t start1 = b1->offset();
  const auto patched = [&](std::size_t at, std::uint64_t v) {
    Bytes b = base;
    put<std::uint64_t>(b, at, v);
    return b;
  };
  const Expect outside = fails(ErrorKind::buffer_out_of_file);
  EXPECT_CASE("outside_offset_at_end", patched(off1, base.size()), outside);
  EXPECT_CASE("outside_offset_past_end", patched(off1, base.size() + 4096), outside);
  EXPECT_CASE("outside_offset_overflows", patched(off1, std::numeric_limits<std::uint64_t>::max() - 8), outside);
  EXPECT_CASE("outside_size_huge", patched(size1, std::uint64_t{1} << 63), outside);
  EXPECT_CASE("outside_size_max", patched(size1, std::numeric_limits<std::uint64_t>::max()), outside);
  EXPECT_CASE("outside_runs_past_end_by_one", patched(off1, base.size() - 4 * 108 + 1), outside);
  EXPECT_CASE("outside_tail_truncated", Bytes(base.begin(), base.end() - 1), outside);
  EXPECT_CASE("outside_overlap_partial", patched(off2, start1 + 4), opens("overlapping_buffers"));
  EXPECT_CASE("outside_inside_flatbuffer", patched(off2, 16), opens("buffer_inside_flatbuffer"));
  // offset <= 1 means "not set" (1 is the converter's placeholder): the tensor has no data.
  EXPECT_CASE("outside_placeholder_offset", patched(off1, 1), opens());
  EXPECT_CASE("outside_zero_offset", patched(off1, 0), opens());
  // Identical ranges are the converter's deduplication, not an overlap.
  {
    auto dup = conv_model();
    dup.add_constant(0, "conv/bias_copy", {4}, TensorType_FLOAT32, to_bytes(std::vector<float>{1, 2, 3, 4}));
    dup.store_outside(2);
    dup.store_outside(3);
    Bytes b = dup.finish();
    put<std::uint64_t>(b, field_at(b, buffer_at(b, 3), tflite::Buffer::VT_OFFSET), buffer_at(b, 2)->offset());
    EXPECT_CASE("outside_deduplicated", b, opens());
  }
}

TEST(corruption_test, outside_custom_options) {
  auto b = custom_model();
  const Bytes base = finish_with_outside_custom_options(b, 0, 0);
  const auto* op = op_at(base, 0, 0);
  const std::size_t off = field_at(base, op, tflite::Operator::VT_LARGE_CUSTOM_OPTIONS_OFFSET);
  const std::size_t size = field_at(base, op, tflite::Operator::VT_LARGE_CUSTOM_OPTIONS_SIZE);
  const auto patched = [&](std::size_t at, std::uint64_t v) {
    Bytes out = base;
    put<std::uint64_t>(out, at, v);
    return out;
  };
  const Expect outside = fails(ErrorKind::buffer_out_of_file);
  EXPECT_CASE("custom_outside_base", base, opens());
  EXPECT_CASE("custom_outside_offset_past_end", patched(off, base.size() + 1), outside);
  EXPECT_CASE("custom_outside_offset_overflows", patched(off, std::numeric_limits<std::uint64_t>::max()), outside);
  EXPECT_CASE("custom_outside_size_huge", patched(size, std::uint64_t{1} << 40), outside);
  EXPECT_CASE("custom_outside_truncated", Bytes(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(op->large_custom_options_offset() + 4)), outside);
  Bytes garbage = base;
  for (std::size_t i = op->large_custom_options_offset(); i < garbage.size(); ++i) garbage[i] = std::byte{0xff};
  EXPECT_CASE("custom_outside_garbage", garbage, opens("custom_options_opaque"));
}

// ---- 10. Subgraph cycles through control-flow ops ----------------------------------------

TEST(corruption_test, subgraph_cycles) {
  const auto cycle = [](const std::string& name, const std::function<void(ModelBuilder&)>& fn) {
    EXPECT_CASE("cycle_" + name, edit(control_flow_model(), fn), opens("subgraph_cycle"));
  };
  cycle("while_body_is_main", [](ModelBuilder& b) { b.op(0, 0).builtin_options.AsWhileOptions()->body_subgraph_index = 0; });
  cycle("if_then_is_main", [](ModelBuilder& b) { b.op(0, 1).builtin_options.AsIfOptions()->then_subgraph_index = 0; });
  cycle("composite_is_main", [](ModelBuilder& b) {
    b.op(0, 3).builtin_options_2.AsStableHLOCompositeOptions()->decomposition_subgraph_index = 0;
  });
  cycle("body_calls_itself", [](ModelBuilder& b) {
    const int op = b.add_operator(2, 0, {0, 1}, {0, 1});
    WhileOptionsT wo;
    wo.cond_subgraph_index = 1;
    wo.body_subgraph_index = 2;
    b.op(2, op).builtin_options.Set(std::move(wo));
  });
  cycle("mutual", [](ModelBuilder& b) {
    for (const auto& [from, to] : {std::pair{2, 3}, std::pair{3, 2}}) {
      const int op = b.add_operator(from, 2, {-1}, {-1});
      CallOnceOptionsT co;
      co.init_subgraph_index = to;
      b.op(from, op).builtin_options.Set(std::move(co));
    }
  });
  // A long chain: no recursion in the checker, so no stack overflow; and no false cycle.
  const auto chain = [](int n, bool close) {
    ModelBuilder b;
    const int once = b.add_opcode(BuiltinOperator_CALL_ONCE);
    for (int i = 0; i < n; ++i) {
      const int sg = b.add_subgraph("s" + std::to_string(i));
      if (i + 1 < n || close) {
        const int op = b.add_operator(sg, once, {-1}, {-1});
        CallOnceOptionsT co;
        co.init_subgraph_index = (i + 1) % n;
        b.op(sg, op).builtin_options.Set(std::move(co));
      }
    }
    return b.finish();
  };
  EXPECT_CASE("cycle_none_in_chain_of_3000", chain(3000, false), opens());
  EXPECT_CASE("cycle_closing_chain_of_3000", chain(3000, true), opens("subgraph_cycle"));
}

// ---- 11. Absurd string tensors, FlexBuffers custom options, appended archives -------------

TEST(corruption_test, absurd_string_tensors) {
  const auto str = [](const std::string& name, const std::function<void(std::vector<std::uint8_t>&, ModelBuilder&)>& fn,
                      const Expect& e) {
    EXPECT_CASE("string_" + name, edit(string_model(), [&](ModelBuilder& b) { fn(b.buffer(1).data, b); }), e);
  };
  const auto w = [](std::vector<std::uint8_t>& d, std::size_t at, std::int32_t v) { std::memcpy(d.data() + at, &v, 4); };
  const Expect bad = fails(ErrorKind::invalid_string);
  str("count_huge", [&](auto& d, auto&) { w(d, 0, kMax32); }, bad);
  str("count_negative", [&](auto& d, auto&) { w(d, 0, -1); }, bad);
  str("count_vs_shape", [&](auto& d, auto&) { w(d, 0, 1); }, bad);
  str("shape_vs_count", [](auto&, auto& b) { b.tensor(0, 0).shape = {3}; }, bad);
  str("first_offset_wrong", [&](auto& d, auto&) { w(d, 4, 12); }, bad);
  str("offsets_decrease", [&](auto& d, auto&) { w(d, 8, 18); w(d, 12, 17); }, bad);
  str("last_offset_past_end", [&](auto& d, auto&) { w(d, 12, 1000); }, bad);
  str("last_offset_short", [&](auto& d, auto&) { w(d, 12, 17); }, bad);
  str("offset_negative", [&](auto& d, auto&) { w(d, 8, -5); }, bad);
  str("too_short", [](auto& d, auto&) { d.resize(3); }, bad);
  str("header_only", [](auto& d, auto&) { d.resize(12); }, bad);
  str("all_empty", [&](auto& d, auto&) {
        d.resize(16);
        w(d, 4, 16);
        w(d, 8, 16);
        w(d, 12, 16);
      },
      opens());
  EXPECT_CASE("string_scalar_two", edit(string_model(), [&](ModelBuilder& b) { w(b.buffer(2).data, 0, 2); }), bad);
  auto outside = string_model();
  outside.store_outside(1);
  EXPECT_CASE("string_outside", outside.finish(), opens());
}

TEST(corruption_test, flexbuffer_custom_options) {
  const auto custom = [](const std::string& name, const std::function<void(OperatorT&)>& fn, const Expect& e) {
    const Bytes bytes = edit(custom_model(), [&](ModelBuilder& b) { fn(b.op(0, 0)); });
    EXPECT_CASE("flex_" + name, bytes, e);
    return bytes;
  };
  const Bytes garbage = custom("garbage", [](OperatorT& op) { op.custom_options = {1, 2, 3, 4, 5}; },
                               opens("custom_options_opaque"));
  EXPECT_TRUE(Model::from_bytes(garbage).subgraph(0).op(0).options().as_map().empty());
  custom("truncated", [](OperatorT& op) { op.custom_options.pop_back(); }, opens("custom_options_opaque"));
  custom("one_byte", [](OperatorT& op) { op.custom_options = {0}; }, opens("custom_options_opaque"));
  custom("root_width_bogus", [](OperatorT& op) { op.custom_options.back() = 0x10; }, opens_any());
  custom("root_type_bogus", [](OperatorT& op) { op.custom_options[op.custom_options.size() - 2] = 0xff; }, opens_any());
  custom("unknown_format", [](OperatorT& op) { op.custom_options_format = static_cast<CustomOptionsFormat>(7); },
         opens("custom_options_opaque"));
  custom("root_is_a_number", [](OperatorT& op) {
    flexbuffers::Builder fbb;
    fbb.Int(42);
    fbb.Finish();
    op.custom_options = fbb.GetBuffer();
  }, opens());
  custom("nested_1000_deep", [](OperatorT& op) {
    flexbuffers::Builder fbb;
    std::vector<std::size_t> starts;
    for (int i = 0; i < 1000; ++i) starts.push_back(fbb.StartVector());
    fbb.Int(1);
    while (!starts.empty()) {
      fbb.EndVector(starts.back(), false, false);
      starts.pop_back();
    }
    fbb.Finish();
    op.custom_options = fbb.GetBuffer();
  }, opens_any());
  EXPECT_CASE("flex_on_builtin_op",
              edit(conv_model(), [](ModelBuilder& b) { b.op(0, 0).custom_options = sample_flexbuffer(); }),
              opens("builtin_with_custom_options"));
  EXPECT_CASE("flex_composite_attributes_garbage", edit(control_flow_model(), [](ModelBuilder& b) {
                b.op(0, 3).builtin_options_2.AsStableHLOCompositeOptions()->composite_attributes = {9, 9, 9, 9};
              }),
              opens());
}

TEST(corruption_test, appended_archives) {
  const Bytes zip = zoo()[2].bytes;  // conv followed by a stored ZIP
  EXPECT_CASE("appended_zip", zip, opens());
  const Model m = Model::from_bytes(zip);
  EXPECT_LT(m.flatbuffer_size(), m.file_size());
  Bytes garbage = conv_model().finish();
  std::mt19937_64 rng(7);
  for (int i = 0; i < (1 << 16); ++i) garbage.push_back(static_cast<std::byte>(rng()));
  EXPECT_CASE("appended_random_bytes", garbage, opens());
  Bytes broken = zip;  // end-of-central-directory record pointing nowhere
  put<std::uint32_t>(broken, broken.size() - 6, 0x7fffffff);
  EXPECT_CASE("appended_zip_broken_directory", broken, opens());
  Bytes cut = zip;
  cut.resize(cut.size() - 30);
  EXPECT_CASE("appended_zip_truncated", cut, opens());
  // After weights stored outside the FlatBuffer.
  auto outside = conv_model();
  outside.store_outside(1);
  Bytes both = outside.finish();
  both.insert(both.end(), zip.begin() + static_cast<std::ptrdiff_t>(conv_model().finish().size()), zip.end());
  EXPECT_CASE("appended_zip_after_weights", both, opens());
}

// ---- Other contradictions and tolerated oddities -----------------------------------------

TEST(corruption_test, contradictory_tensors) {
  EXPECT_CASE("tensor_variable_with_data", edit(conv_model(), [](ModelBuilder& b) { b.tensor(0, 1).is_variable = true; }),
              fails(ErrorKind::invalid_tensor));
  EXPECT_CASE("tensor_external_with_data", edit(odd_model(), [](ModelBuilder& b) {
                b.tensor(0, 5).buffer = static_cast<std::uint32_t>(b.add_buffer(std::vector<std::uint8_t>(16, 1)));
              }),
              fails(ErrorKind::invalid_tensor));
  // The object API omits empty vectors, so these operators have no input (output) list at all.
  EXPECT_CASE("operator_without_inputs", edit(conv_model(), [](ModelBuilder& b) { b.op(0, 0).inputs.clear(); }),
              fails(ErrorKind::invalid_flatbuffer));
  EXPECT_CASE("operator_without_outputs", edit(conv_model(), [](ModelBuilder& b) { b.op(0, 0).outputs.clear(); }),
              fails(ErrorKind::invalid_flatbuffer));
}

TEST(corruption_test, unknown_codes_are_tolerated) {
  const auto odd = [](const std::string& name, const std::function<void(ModelBuilder&)>& fn, const std::string& code) {
    EXPECT_CASE("tolerated_" + name, edit(conv_model(), fn), opens(code));
  };
  odd("placeholder_code_127", [](ModelBuilder& b) {
    b.model().operator_codes[0]->builtin_code = BuiltinOperator_PLACEHOLDER_FOR_GREATER_OP_CODES;
    b.model().operator_codes[0]->deprecated_builtin_code = 127;
  }, "unknown_operator");
  odd("negative_code", [](ModelBuilder& b) {
    b.model().operator_codes[0]->builtin_code = static_cast<BuiltinOperator>(-5);
    b.model().operator_codes[0]->deprecated_builtin_code = -5;
  }, "unknown_operator");
  odd("future_dtype", [](ModelBuilder& b) { b.tensor(0, 3).type = static_cast<TensorType>(120); }, "unknown_dtype");
  odd("negative_dtype", [](ModelBuilder& b) { b.tensor(0, 3).type = static_cast<TensorType>(-3); }, "unknown_dtype");
  odd("custom_without_name", [](ModelBuilder& b) {
    b.model().operator_codes[0]->builtin_code = BuiltinOperator_CUSTOM;
    b.model().operator_codes[0]->deprecated_builtin_code = BuiltinOperator_CUSTOM;
  }, "custom_without_name");
  odd("nonempty_buffer0", [](ModelBuilder& b) {
    // Activations get buffers of their own first: buffer 0's bytes would otherwise be their data.
    b.tensor(0, 0).buffer = static_cast<std::uint32_t>(b.add_buffer({}));
    b.tensor(0, 3).buffer = static_cast<std::uint32_t>(b.add_buffer({}));
    b.buffer(0).data = {1, 2, 3};
  }, "nonempty_buffer0");
  // Buffer 0 is the no-data sentinel: tensors pointing at it stay activations (policy in validate.cpp).
  odd("buffer0_data_given_to_activations", [](ModelBuilder& b) { b.buffer(0).data = {1, 2, 3}; }, "nonempty_buffer0");
  odd("no_subgraphs", [](ModelBuilder& b) { b.model().subgraphs.clear(); }, "no_subgraphs");
  odd("mutating_inputs_length", [](ModelBuilder& b) { b.op(0, 0).mutating_variable_inputs = {true}; },
      "mutating_inputs_length");
  odd("signature_without_key", [](ModelBuilder& b) { b.add_signature("", 0, {{"x", 0}}, {}); }, "signature_without_key");
  // The effective code is max(builtin_code, deprecated_builtin_code).
  const Bytes old = edit(conv_model(), [](ModelBuilder& b) {
    b.model().operator_codes[0]->builtin_code = BuiltinOperator_ADD;
    b.model().operator_codes[0]->deprecated_builtin_code = BuiltinOperator_CONV_2D;
  });
  EXPECT_CASE("tolerated_old_opcode_field", old, opens());
  EXPECT_EQ(Model::from_bytes(old).subgraph(0).op(0).op_name(), "CONV_2D");
}

// Text from the file (metadata names) must not break the one-line error report.
TEST(corruption_test, control_characters_in_messages) {
  const Bytes b = edit(signature_model(), [](ModelBuilder& m) {
    m.model().metadata[0]->name = "evil\nname\r\x1b[31m";
    m.model().metadata[0]->buffer = 99;
  });
  EXPECT_CASE("message_control_characters", b, fails(ErrorKind::index_out_of_range));
  const auto r = Model::try_from_bytes(b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(std::string(r.error().what()).find_first_of("\n\r\x1b"), std::string::npos) << r.error().what();
}

// ---- Real models -------------------------------------------------------------------------

TEST(corruption_test, real_models_open_and_walk) {
  std::size_t n = 0;
  if (fs::is_directory(models_dir()))
    for (const auto& entry : fs::directory_iterator(models_dir())) {
      if (entry.path().extension() != ".tflite") continue;
      ++n;
      struct stat before {}, after {};
      ASSERT_EQ(stat(entry.path().c_str(), &before), 0);
      try {
        const Model m = Model::open(entry.path());
        const auto stats = fuzzing::walk(m);
        EXPECT_GT(stats.tensors, 0u) << entry.path();
      } catch (const std::exception& e) {
        ADD_FAILURE() << entry.path() << ": " << e.what();
      }
      ASSERT_EQ(stat(entry.path().c_str(), &after), 0);
      EXPECT_EQ(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
      EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
      EXPECT_EQ(before.st_size, after.st_size);
    }
  EXPECT_GE(n, 20u) << "real models missing from " << models_dir() << ": run scripts/fetch-models.sh";
}

std::unique_ptr<ModelT> unpack(const Bytes& b) { return std::unique_ptr<ModelT>(root(b)->UnPack()); }

TEST(corruption_test, real_models_broken_semantically) {
  const auto recrop = real_model("hand_recrop.tflite");
  const auto sparse = real_model("face_detection_full_range_sparse.tflite");
  if (!recrop || !sparse) return;
  const auto broken = [&](const std::string& name, const Bytes& base, const std::function<void(ModelT&)>& fn,
                          const Expect& e) {
    auto m = unpack(base);
    fn(*m);
    EXPECT_CASE("real_" + name, packed(*m), e);
  };
  const auto first_constant = [](ModelT& m) -> TensorT& {
    for (auto& t : m.subgraphs[0]->tensors)
      if (t->buffer && !m.buffers[t->buffer]->data.empty()) return *t;
    throw std::logic_error("no constant");
  };
  broken("recrop_repacked", *recrop, [](ModelT&) {}, opens());
  broken("recrop_version", *recrop, [](ModelT& m) { m.version = 2; }, fails(ErrorKind::bad_version));
  broken("recrop_short_buffer", *recrop, [&](ModelT& m) { m.buffers[first_constant(m).buffer]->data.pop_back(); },
         fails(ErrorKind::size_mismatch));
  broken("recrop_negative_dim", *recrop, [&](ModelT& m) { first_constant(m).shape[0] = -1; },
         fails(ErrorKind::invalid_shape));
  broken("recrop_op_input", *recrop, [](ModelT& m) { m.subgraphs[0]->operators[5]->inputs[0] = 100000; },
         fails(ErrorKind::index_out_of_range));
  broken("recrop_opcode", *recrop, [](ModelT& m) { m.subgraphs[0]->operators.back()->opcode_index = 999; },
         fails(ErrorKind::index_out_of_range));
  broken("recrop_buffer_index", *recrop, [&](ModelT& m) { first_constant(m).buffer = 1u << 30; },
         fails(ErrorKind::index_out_of_range));
  broken("recrop_variable_constant", *recrop, [&](ModelT& m) { first_constant(m).is_variable = true; },
         fails(ErrorKind::invalid_tensor));
  broken("recrop_quantization", *recrop, [&](ModelT& m) {
    auto& t = first_constant(m);
    t.quantization = std::make_unique<QuantizationParametersT>();
    t.quantization->scale = {1, 2};
    t.quantization->zero_point = {0, 0, 0};
  }, fails(ErrorKind::invalid_quantization));
  const auto first_sparse = [](ModelT& m) -> SparsityParametersT& {
    for (auto& t : m.subgraphs[0]->tensors)
      if (t->sparsity) return *t->sparsity;
    throw std::logic_error("no sparse tensor");
  };
  const auto csr_level = [&](ModelT& m) -> DimensionMetadataT& {
    for (auto& d : first_sparse(m).dim_metadata)
      if (d->format == DimensionType_SPARSE_CSR) return *d;
    throw std::logic_error("no CSR level");
  };
  broken("sparse_repacked", *sparse, [](ModelT&) {}, opens());
  broken("sparse_traversal", *sparse, [&](ModelT& m) { first_sparse(m).traversal_order[0] = 99; },
         fails(ErrorKind::invalid_sparsity));
  broken("sparse_dense_size", *sparse, [&](ModelT& m) { first_sparse(m).dim_metadata[0]->dense_size += 1; },
         fails(ErrorKind::invalid_sparsity));
  broken("sparse_no_segments", *sparse, [&](ModelT& m) { csr_level(m).array_segments.Reset(); },
         fails(ErrorKind::invalid_sparsity));
  broken("sparse_no_indices", *sparse, [&](ModelT& m) { csr_level(m).array_indices.Reset(); },
         fails(ErrorKind::invalid_sparsity));
}

TEST(corruption_test, real_models_with_outside_buffers) {
  const auto recrop = real_model("hand_recrop.tflite");
  if (!recrop) return;
  ModelBuilder b;
  b.model() = std::move(*unpack(*recrop));
  for (std::size_t i = 1; i < b.model().buffers.size(); ++i)
    if (!b.model().buffers[i]->data.empty()) b.store_outside(static_cast<int>(i));
  const Bytes moved = b.finish();
  EXPECT_CASE("real_recrop_outside", moved, opens());
  const Model original = Model::from_bytes(*recrop);
  const Model relocated = Model::from_bytes(moved);
  ASSERT_EQ(original.subgraph(0).tensor_count(), relocated.subgraph(0).tensor_count());
  std::size_t outside = 0;
  // (A ViewRange points at its Subgraph: keep the Subgraph alive across the loop.)
  const Subgraph original_main = original.subgraph(0);
  for (const Tensor t : original_main.tensors()) {
    const Tensor r = relocated.subgraph(0).tensor(t.index());
    ASSERT_EQ(t.data().size(), r.data().size());
    EXPECT_TRUE(std::equal(t.data().begin(), t.data().end(), r.data().begin())) << t.name();
    if (r.data_offset() && *r.data_offset() >= relocated.flatbuffer_size()) ++outside;
  }
  EXPECT_GT(outside, 10u);
  EXPECT_CASE("real_recrop_outside_truncated", Bytes(moved.begin(), moved.end() - 17), fails(ErrorKind::buffer_out_of_file));
  Bytes past = moved;
  const auto* last = root(moved)->buffers()->Get(root(moved)->buffers()->size() - 1);
  for (std::uint32_t i = root(moved)->buffers()->size(); i-- > 1;) {
    const auto* buf = root(moved)->buffers()->Get(i);
    if (buf->offset() > 1) {
      last = buf;
      break;
    }
  }
  put<std::uint64_t>(past, field_at(moved, last, tflite::Buffer::VT_OFFSET), moved.size());
  EXPECT_CASE("real_recrop_outside_offset_past_end", past, fails(ErrorKind::buffer_out_of_file));
}

// ---- Metadata and appended archives ------------------------------------------------------
// Broken metadata buffers and hostile archives (metadata_cases.h) open: the metadata is decoded
// on demand and refused then, with invalid_metadata (include/litelens/metadata.h). Each case is a
// file of the CLI matrix, whose expectations follow from the names: meta_tflite_* and
// meta_conversion_* report that entry broken, meta_archive_* the archive (`files` fails),
// meta_member_* a member's data (`files --extract` fails), and nothing else is broken in them.

template <class F>
std::string metadata_failure(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind() == ErrorKind::invalid_metadata ? e.message() : "wrong kind: " + std::string(e.what());
  }
  return "no error";
}

TEST(corruption_test, metadata_and_archives) {
  const auto good_tflite = pack_model_metadata(sample_model_metadata());
  const auto good_conversion = sample_conversion_metadata();
  const std::vector<ZipEntry> good_files = {stored_entry("labels.txt", "sparrow\nrobin\n"),
                                            deflated_animals("labels_fr.txt")};
  const auto with_good_archive = [&](Bytes model) {
    const Zip z = make_zip(good_files, model.size());
    return with_archive(std::move(model), z);
  };
  const auto expect_fine = [](const Model& m, bool tflite, bool conversion, bool archive) {
    if (tflite) EXPECT_NO_THROW(read_model_metadata(m));
    if (conversion) EXPECT_NO_THROW(read_conversion_metadata(m));
    if (archive) EXPECT_NO_THROW(associated_files(m));
    EXPECT_EQ(read_min_runtime_version(m)->version, "2.3.0");
  };
  std::size_t recorded = 0;
  for (const auto& c : broken_model_metadata()) {
    SCOPED_TRACE(c.name);
    const Bytes bytes = with_good_archive(metadata_model_with(c.bytes, good_conversion).finish());
    EXPECT_CASE("meta_tflite_" + c.name, bytes, opens());
    const Model m = Model::from_bytes(bytes);
    const std::string message = metadata_failure([&] { read_model_metadata(m); });
    EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
    expect_fine(m, false, true, true);
    ++recorded;
  }
  for (const auto& c : broken_conversion_metadata()) {
    SCOPED_TRACE(c.name);
    const Bytes bytes = with_good_archive(metadata_model_with(good_tflite, c.bytes).finish());
    EXPECT_CASE("meta_conversion_" + c.name, bytes, opens());
    const Model m = Model::from_bytes(bytes);
    const std::string message = metadata_failure([&] { read_conversion_metadata(m); });
    EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
    expect_fine(m, true, false, true);
    ++recorded;
  }
  for (const auto& c : hostile_archives()) {
    SCOPED_TRACE(c.name);
    const Bytes bytes = model_with_zip(c.entries, c.options, c.patch, metadata_model().finish());
    EXPECT_CASE("meta_archive_" + c.name, bytes, opens());
    const Model m = Model::from_bytes(bytes);
    const std::string message = metadata_failure([&] { associated_files(m); });
    EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
    expect_fine(m, true, true, false);
    ++recorded;
  }
  for (const auto& c : bad_member_data()) {
    SCOPED_TRACE(c.name);
    const Bytes bytes = model_with_zip(c.entries, c.options, c.patch, metadata_model().finish());
    EXPECT_CASE("meta_member_" + c.name, bytes, opens());
    const Model m = Model::from_bytes(bytes);
    expect_fine(m, true, true, true);
    std::string message = "no error";
    for (const auto& f : associated_files(m)) {
      message = metadata_failure([&] { (void)read_associated_file(m, f); });
      if (message != "no error") break;
    }
    EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
    ++recorded;
  }
  // The intact forms open and decode completely.
  for (const char* name : {"metadata_zip", "metadata_zip64"}) {
    SCOPED_TRACE(name);
    const auto all = zoo();
    const auto it = std::find_if(all.begin(), all.end(), [&](const ZooModel& z) { return z.name == name; });
    ASSERT_NE(it, all.end());
    const Model m = Model::from_bytes(it->bytes);
    EXPECT_EQ(read_model_metadata(m)->name, "Bird classifier");
    EXPECT_EQ(read_conversion_metadata(m)->model_type, "KERAS_MODEL");
    const auto files = associated_files(m);
    ASSERT_EQ(files.size(), 7u);
    EXPECT_EQ(files[1].name, "labels_fr.txt");
    EXPECT_EQ(read_associated_file(m, files[1]).size(), animals_text().size());
    for (const auto& f : read_model_metadata(m)->all_associated_files())
      EXPECT_TRUE(find_associated_file(m, f.name).has_value()) << f.name;
  }
  EXPECT_GE(recorded, 55u);
}

}  // namespace
}  // namespace litelens::hardening
