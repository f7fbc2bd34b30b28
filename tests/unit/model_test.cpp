// The reader on models built in the test: every part of the typed read API.
#include <flatbuffers/flexbuffers.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "litelens/model.h"
#include "litelens/summary.h"
#include "model_builder.h"

namespace litelens {
namespace {

using testing::conv_model;
using testing::ModelBuilder;
using testing::to_bytes;

std::vector<float> floats(std::span<const std::byte> bytes) {
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

TEST(model_test, reads_tensors_of_a_conv_model) {
  const auto bytes = conv_model().finish();
  const Model m = Model::from_bytes(bytes, "conv.tflite");
  EXPECT_EQ(m.label(), "conv.tflite");
  EXPECT_EQ(m.version(), 3u);
  EXPECT_EQ(m.description(), "litelens test model");
  EXPECT_EQ(m.file_size(), bytes.size());
  EXPECT_EQ(m.flatbuffer_size(), bytes.size());
  ASSERT_EQ(m.subgraph_count(), 1u);
  const Subgraph sg = m.subgraph(0);
  EXPECT_EQ(sg.name(), "main");
  EXPECT_EQ(std::vector<int>(sg.inputs().begin(), sg.inputs().end()), std::vector<int>{0});
  ASSERT_EQ(sg.tensor_count(), 4u);

  const Tensor input = sg.tensor(0);
  EXPECT_EQ(input.name(), "input");
  EXPECT_FALSE(input.is_constant());
  EXPECT_TRUE(input.data().empty());
  EXPECT_FALSE(input.data_offset());

  const Tensor filter = sg.tensor(1);
  EXPECT_EQ(filter.dtype(), DType::float32);
  EXPECT_EQ(std::vector<int>(filter.shape().begin(), filter.shape().end()), (std::vector<int>{4, 3, 3, 3}));
  EXPECT_EQ(filter.element_count(), 108u);
  ASSERT_TRUE(filter.is_constant());
  ASSERT_EQ(filter.data().size(), 108u * 4);
  // Zero-copy: the span points into the model's bytes at data_offset, 16-byte aligned.
  EXPECT_EQ(filter.data().data(), m.bytes().data() + *filter.data_offset());
  EXPECT_EQ(*filter.data_offset() % 16, 0u);
  const auto values = filter.data_as<float>();
  EXPECT_EQ(values[0], -10.0f);
  EXPECT_EQ(values[107], 107 * 0.5f - 10.0f);
  EXPECT_THROW(filter.data_as<std::int8_t>(), std::invalid_argument);
  EXPECT_FALSE(filter.quantization());
  EXPECT_FALSE(filter.sparsity());
  EXPECT_THROW(sg.tensor(4), std::out_of_range);
  EXPECT_THROW(sg.tensor(-1), std::out_of_range);
}

TEST(model_test, decodes_builtin_options_with_names_and_defaults) {
  const Model m = Model::from_bytes(conv_model().finish());
  const Operator op = m.subgraph(0).op(0);
  EXPECT_EQ(op.op_name(), "CONV_2D");
  EXPECT_EQ(op.opcode(), 3);
  EXPECT_EQ(op.version(), 1);
  EXPECT_FALSE(op.is_custom());
  EXPECT_EQ(op.options_type(), "Conv2DOptions");
  const Value options = op.options();
  ASSERT_TRUE(options.is_map());
  EXPECT_EQ(options.find("padding")->as_string(), "VALID");
  EXPECT_EQ(options.find("fused_activation_function")->as_string(), "RELU6");
  EXPECT_EQ(options.find("stride_w")->as_int(), 2);
  // Absent from the file, present with the schema default.
  EXPECT_EQ(options.find("dilation_w_factor")->as_int(), 1);
  EXPECT_EQ(options.find("quantized_bias_type")->as_string(), "FLOAT32");
  // Declaration order is kept.
  EXPECT_EQ(options.as_map().front().first, "padding");
}

TEST(model_test, open_maps_a_file_and_names_it_in_errors) {
  const auto path = testing::write_temp_file("model_test_conv.tflite", conv_model().finish());
  const Model m = Model::open(path);
  EXPECT_EQ(m.label(), path);
  EXPECT_EQ(m.subgraph(0).tensor(2).data_as<float>()[3], 4.0f);

  const auto missing = std::filesystem::temp_directory_path() / "litelens-tests" / "does-not-exist.tflite";
  try {
    (void)Model::open(missing);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_EQ(e.label(), missing.string());
    EXPECT_NE(std::string(e.what()).find("does-not-exist.tflite"), std::string::npos);
  }
  const auto result = Model::try_open(missing);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind(), ErrorKind::io);
}

TEST(model_test, try_from_bytes_reports_instead_of_throwing) {
  auto bytes = conv_model().finish();
  bytes[5] = std::byte{'X'};  // identifier
  const auto result = Model::try_from_bytes(bytes, "bad.tflite");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind(), ErrorKind::bad_identifier);
  EXPECT_EQ(result.error().offset(), 4u);
  EXPECT_EQ(result.error().label(), "bad.tflite");
}

TEST(model_test, ranges_over_a_temporary_subgraph_are_safe) {
  const Model m = Model::from_bytes(conv_model().finish());
  std::vector<std::string> names;
  for (const Tensor t : m.subgraph(0).tensors()) names.emplace_back(t.name());
  EXPECT_EQ(names, (std::vector<std::string>{"input", "conv/filter", "conv/bias", "conv/output"}));
  int ops = 0;
  for (const Operator op : m.subgraph(0).operators()) ops += op.opcode() == 3;
  EXPECT_EQ(ops, 1);
}

TEST(model_test, views_stay_valid_when_the_model_moves) {
  Model m = Model::from_bytes(conv_model().finish());
  const Tensor filter = m.subgraph(0).tensor(1);
  Model moved = std::move(m);
  EXPECT_EQ(filter.name(), "conv/filter");
  EXPECT_EQ(filter.data_as<float>()[0], -10.0f);
}

TEST(model_test, reads_buffers_stored_after_the_flatbuffer) {
  ModelBuilder b = conv_model();
  b.store_outside(static_cast<int>(b.tensor(0, 1).buffer));
  b.store_outside(static_cast<int>(b.tensor(0, 2).buffer));
  const auto bytes = b.finish();
  const Model m = Model::from_bytes(bytes);
  EXPECT_LT(m.flatbuffer_size(), m.file_size());
  const Tensor filter = m.subgraph(0).tensor(1);
  ASSERT_TRUE(filter.is_constant());
  EXPECT_GE(*filter.data_offset(), m.flatbuffer_size());
  EXPECT_EQ(floats(filter.data())[5], 5 * 0.5f - 10.0f);
  EXPECT_EQ(floats(m.subgraph(0).tensor(2).data()), (std::vector<float>{1, 2, 3, 4}));
}

// Data after the FlatBuffer has no alignment rule. data_as<T>() cannot view misaligned bytes (it
// says so, and is_aligned_for<T>() tells in advance); copy_as<T>() reads them anyway.
TEST(model_test, misaligned_data_is_read_by_copy) {
  ModelBuilder b = conv_model();
  const int bias_buffer = static_cast<int>(b.tensor(0, 2).buffer);
  b.buffer(bias_buffer).data.clear();
  b.buffer(bias_buffer).offset = 2;  // a placeholder of the same width, replaced below
  b.buffer(bias_buffer).size = 16;
  const std::size_t head_size = b.finish().size();
  b.buffer(bias_buffer).offset = head_size + 1;  // odd: misaligned for float
  auto bytes = b.finish();
  ASSERT_EQ(bytes.size(), head_size);
  bytes.push_back(std::byte{0});
  const std::vector<float> bias{0.5f, -1.0f, 2.0f, 8.0f};
  const auto* raw = reinterpret_cast<const std::byte*>(bias.data());
  bytes.insert(bytes.end(), raw, raw + 16);
  const Model m = Model::from_bytes(bytes);
  const Tensor t = m.subgraph(0).tensor(2);
  EXPECT_EQ(*t.data_offset(), head_size + 1);
  EXPECT_FALSE(t.is_aligned_for<float>());
  EXPECT_THROW(t.data_as<float>(), std::invalid_argument);
  EXPECT_EQ(t.copy_as<float>(), bias);
  EXPECT_THROW(t.copy_as<std::int32_t>(), std::invalid_argument);  // the wrong type is still misuse
  EXPECT_TRUE(m.subgraph(0).tensor(1).is_aligned_for<float>());
  EXPECT_EQ(m.subgraph(0).tensor(1).copy_as<float>()[0], -10.0f);
}

// Files over 2 GiB keep their weights after the FlatBuffer: the verifier sees only the FlatBuffer
// part, and offsets past 2^31 (and 2^32) read correctly. The file is sparse, so this is cheap.
TEST(model_test, opens_files_larger_than_4_gib_with_weights_at_the_end) {
  ModelBuilder b = conv_model();
  const int bias_buffer = static_cast<int>(b.tensor(0, 2).buffer);
  const std::uint64_t far = (4ull << 30) + 4096;  // past 2^32
  b.buffer(bias_buffer).data.clear();
  b.buffer(bias_buffer).offset = far;
  b.buffer(bias_buffer).size = 16;
  const auto head = b.finish();
  const std::string path = ::testing::TempDir() + "model_test_huge_" + std::to_string(::getpid()) + ".tflite";
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(head.data()), static_cast<std::streamsize>(head.size()));
    f.seekp(static_cast<std::streamoff>(far));
    const std::vector<float> bias{1.5f, -2.0f, 3.25f, 4.0f};
    f.write(reinterpret_cast<const char*>(bias.data()), 16);
  }
  {
    const Model m = Model::open(path);
    EXPECT_EQ(m.file_size(), far + 16);
    EXPECT_EQ(m.flatbuffer_size(), head.size());
    const Tensor bias = m.subgraph(0).tensor(2);
    EXPECT_EQ(*bias.data_offset(), far);
    EXPECT_EQ(floats(bias.data()), (std::vector<float>{1.5f, -2.0f, 3.25f, 4.0f}));
    EXPECT_EQ(floats(m.subgraph(0).tensor(1).data())[1], 0.5f - 10.0f);  // inline data still reads
  }
  std::filesystem::resize_file(path, far + 8);  // the weight now ends past the file
  try {
    (void)Model::open(path);
    ADD_FAILURE() << "a buffer past the end of the file opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::buffer_out_of_file) << e.what();
  }
  std::filesystem::remove(path);
}

// Opening and walking everything but the data must not read the weights: their pages stay out of
// memory until data() is used. Checked with mincore() after dropping the file from the page cache.
TEST(model_test, open_touches_no_data_pages) {
  ModelBuilder b = conv_model();
  const int big = b.add_constant(0, "big", {4 << 20}, tflite::TensorType_INT8, std::vector<std::uint8_t>(4 << 20, 7));
  b.store_outside(static_cast<int>(b.tensor(0, big).buffer));
  const auto path = testing::write_temp_file("model_test_big.tflite", b.finish());
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::fdatasync(fd);
  ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  ::close(fd);

  const Model m = Model::open(path);
  for (const Subgraph sg : m.subgraphs()) {
    for (const Tensor t : sg.tensors()) (void)t.quantization(), (void)t.name(), (void)t.data_offset();
    for (const Operator op : sg.operators()) (void)op.options();
  }
  const Tensor t = m.subgraph(0).tensor(big);
  const long page = ::sysconf(_SC_PAGESIZE);
  // Skip the first 1 MiB of the data: read-ahead around the FlatBuffer may legitimately load it.
  const auto* begin = reinterpret_cast<std::uintptr_t>(t.data().data()) + (1 << 20) > 0
                          ? t.data().data() + (1 << 20) : t.data().data();
  const auto aligned = reinterpret_cast<std::uintptr_t>(begin) / page * page;
  const std::size_t length = static_cast<std::size_t>(t.data().data() + t.data().size() - reinterpret_cast<const std::byte*>(aligned));
  std::vector<unsigned char> resident((length + page - 1) / page);
  ASSERT_EQ(::mincore(reinterpret_cast<void*>(aligned), length, resident.data()), 0);
  const auto count_resident = [&] {
    std::size_t n = 0;
    for (unsigned char r : resident) n += r & 1;
    return n;
  };
  EXPECT_EQ(count_resident(), 0u) << "weight pages were read during open";
  // Asking for the data does read it: the check above is not vacuous.
  std::uint64_t sum = 0;
  for (std::byte v : t.data()) sum += static_cast<std::uint8_t>(v);
  EXPECT_EQ(sum, 7ull * (4 << 20));
  ASSERT_EQ(::mincore(reinterpret_cast<void*>(aligned), length, resident.data()), 0);
  EXPECT_EQ(count_resident(), resident.size());
}

// The kernel's read-ahead flag on the mapping (VmFlags in /proc/self/smaps: "rr" random) of the
// area holding `address`.
std::string read_ahead_flags(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2) {  // an area's header line
      inside = a >= begin && a < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line.find(" rr") != std::string::npos ? "rr" : "normal";
    }
  }
  return "not mapped";
}

// Metadata is read with random access (no read-ahead into weights), the weights with the
// kernel's normal read-ahead (a view of a large tensor read from a cold cache would otherwise
// be read one page at a time).
TEST(model_test, weights_get_read_ahead_and_metadata_does_not) {
  ModelBuilder b = conv_model();
  const int inside = b.add_constant(0, "inside", {2 << 20}, tflite::TensorType_INT8, std::vector<std::uint8_t>(2 << 20, 1));
  const int outside = b.add_constant(0, "outside", {4 << 20}, tflite::TensorType_INT8, std::vector<std::uint8_t>(4 << 20, 7));
  b.store_outside(static_cast<int>(b.tensor(0, outside).buffer));
  const Model m = Model::open(testing::write_temp_file("model_test_read_ahead.tflite", b.finish()));
  const Tensor in = m.subgraph(0).tensor(inside), out = m.subgraph(0).tensor(outside);
  const auto middle = [](const Tensor& t) { return t.data().data() + t.data().size() / 2; };
  EXPECT_EQ(read_ahead_flags(m.bytes().data()), "rr");  // the FlatBuffer's root table
  EXPECT_EQ(read_ahead_flags(middle(in)), "normal");
  EXPECT_EQ(read_ahead_flags(middle(out)), "normal");
}

// A hostile file cannot use up the process's mapping areas (vm.max_map_count): however many
// far-apart weights it has, at most 64 get their own read-ahead flag (each can split the mapping).
TEST(model_test, read_ahead_flags_split_the_mapping_a_bounded_number_of_times) {
  ModelBuilder b = conv_model();
  // 200 weights of 1 MiB, their buffers built as 3-byte placeholders and moved out below.
  for (int i = 0; i < 200; ++i)
    b.add_constant(0, "w" + std::to_string(i), {1 << 20}, tflite::TensorType_INT8, {1, 2, 3});
  // Every weight 2 MiB after the previous one, page-aligned, with holes between: nothing merges.
  // The file is sparse (400 MB that take no disk space); the values do not matter here.
  tflite::ModelT model;
  const auto built = b.finish();
  flatbuffers::GetRoot<tflite::Model>(built.data())->UnPackTo(&model);
  std::uint64_t next = std::uint64_t{4} << 20, end = 0;
  for (auto& buffer : model.buffers) {
    if (buffer->data.size() != 3) continue;
    buffer->data.clear();
    buffer->size = 1 << 20;
    buffer->offset = next;
    end = next + buffer->size;
    next += std::uint64_t{2} << 20;
  }
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(tflite::Model::Pack(fbb, &model), tflite::ModelIdentifier());
  const auto* root = reinterpret_cast<const std::byte*>(fbb.GetBufferPointer());
  const auto path = testing::write_temp_file("model_test_spread.tflite", std::vector<std::byte>(root, root + fbb.GetSize()));
  std::filesystem::resize_file(path, end);
  const Model m = Model::open(path);
  int areas = 0, normal = 0;
  for (int i = 0; i < 200; ++i) {
    const Tensor t = m.subgraph(0).tensor(static_cast<int>(m.subgraph(0).tensor_count()) - 200 + i);
    normal += read_ahead_flags(t.data().data() + t.data().size() / 2) == "normal";
  }
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) areas += line.find("model_test_spread.tflite") != std::string::npos;
  EXPECT_EQ(normal, 64);
  EXPECT_LE(areas, 2 * 64 + 1);
}

TEST(model_test, resolves_opcodes_above_127_and_old_files) {
  ModelBuilder b;
  const int sg = b.add_subgraph();
  const int a = b.add_tensor(sg, "a", {2});
  const int c = b.add_tensor(sg, "c", {2});
  b.add_operator(sg, b.add_opcode(tflite::BuiltinOperator_STABLEHLO_ADD), {a, a}, {c});
  // An old file: only the 8-bit field carries the code.
  const int old = b.add_opcode(tflite::BuiltinOperator_ADD);
  b.model().operator_codes[old]->builtin_code = tflite::BuiltinOperator_ADD;
  b.model().operator_codes[old]->deprecated_builtin_code = tflite::BuiltinOperator_CONV_2D;
  b.add_operator(sg, old, {a, a}, {c});
  const Model m = Model::from_bytes(b.finish());
  EXPECT_EQ(m.subgraph(0).op(0).op_name(), "STABLEHLO_ADD");
  EXPECT_EQ(m.subgraph(0).op(0).opcode(), 163);
  EXPECT_EQ(m.subgraph(0).op(1).op_name(), "CONV_2D");
  EXPECT_EQ(m.operator_codes()[0].name, "STABLEHLO_ADD");
}

TEST(model_test, reads_quantization_per_axis_and_blockwise) {
  ModelBuilder b;
  const int sg = b.add_subgraph();
  const int w = b.add_constant(sg, "w", {3, 2}, tflite::TensorType_INT8, {1, 2, 3, 4, 5, 6});
  auto q = std::make_unique<tflite::QuantizationParametersT>();
  q->scale = {0.5f, 0.25f, 0.125f};
  q->zero_point = {0, 0, 1};
  q->quantized_dimension = 0;
  b.tensor(sg, w).quantization = std::move(q);
  const int scales = b.add_constant(sg, "scales", {2, 1}, tflite::TensorType_FLOAT32, to_bytes(std::vector<float>{1, 2}));
  const int blocked = b.add_constant(sg, "blocked", {2, 4}, tflite::TensorType_INT4, {0x21, 0x43, 0x65, 0x07});
  auto bq = std::make_unique<tflite::QuantizationParametersT>();
  tflite::BlockwiseQuantizationT block;
  block.scales = scales;
  block.zero_points = -1;
  block.block_size = 4;
  bq->details.Set(std::move(block));
  b.tensor(sg, blocked).quantization = std::move(bq);
  const Model m = Model::from_bytes(b.finish());
  const auto per_axis = m.subgraph(0).tensor(w).quantization();
  ASSERT_TRUE(per_axis);
  EXPECT_TRUE(per_axis->is_per_axis());
  EXPECT_EQ(per_axis->scale, (std::vector<float>{0.5f, 0.25f, 0.125f}));
  EXPECT_EQ(per_axis->zero_point, (std::vector<std::int64_t>{0, 0, 1}));
  const auto blockwise = m.subgraph(0).tensor(blocked).quantization();
  ASSERT_TRUE(blockwise);
  EXPECT_EQ(blockwise->scheme, Quantization::Scheme::blockwise);
  EXPECT_EQ(blockwise->scales_tensor, scales);
  EXPECT_EQ(blockwise->block_size, 4);
  EXPECT_EQ(m.subgraph(0).tensor(blocked).data().size(), 4u);  // 8 int4 values packed
}

// Schema "3d": values kept in a separate file are described, never read, and do not count as
// constants of this file.
TEST(model_test, reports_where_external_values_live) {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  const int first = b.add_tensor(sg, "embedding", {4, 2});
  const int second = b.add_tensor(sg, "head", {2});
  const int twin = b.add_tensor(sg, "head_again", {2});
  const int plain = b.add_tensor(sg, "activation", {2});
  for (const char* name : {"weights-0.bin", "weights-1.bin"}) {
    auto group = std::make_unique<tflite::ExternalBufferGroupT>();
    group->name = name;
    b.model().external_buffer_groups.push_back(std::move(group));
  }
  const auto add_external = [&](std::uint32_t id, std::uint32_t group, std::uint64_t offset, std::uint64_t length,
                                std::string packing) {
    auto e = std::make_unique<tflite::ExternalBufferT>();
    e->id = id;
    e->group = group;
    e->offset = offset;
    e->length = length;
    e->packing = std::move(packing);
    b.model().external_buffers.push_back(std::move(e));
  };
  add_external(0x80000001u, 1, 4096, 8, "");
  add_external(0x80000000u, 0, 1ull << 33, 32, "row-major");
  add_external(0x80000001u, 0, 0, 999, "");  // a duplicate id: the first one is used
  b.tensor(sg, first).external_buffer = 0x80000000u;
  b.tensor(sg, second).external_buffer = 0x80000001u;
  b.tensor(sg, twin).external_buffer = 0x80000001u;
  const Model m = Model::from_bytes(b.finish());
  const Subgraph g = m.subgraph(0);

  const auto e0 = g.tensor(first).external_data();
  ASSERT_TRUE(e0);
  EXPECT_EQ(e0->id, 0x80000000u);
  EXPECT_EQ(e0->group, 0u);
  EXPECT_EQ(e0->group_name, "weights-0.bin");
  EXPECT_EQ(e0->offset, 1ull << 33);
  EXPECT_EQ(e0->length, 32u);
  EXPECT_EQ(e0->packing, "row-major");
  const auto e1 = g.tensor(second).external_data();
  ASSERT_TRUE(e1);
  EXPECT_EQ(e1->group_name, "weights-1.bin");
  EXPECT_EQ(e1->offset, 4096u);
  EXPECT_EQ(e1->length, 8u);
  EXPECT_EQ(e1->packing, "");
  EXPECT_FALSE(g.tensor(plain).external_data());
  EXPECT_FALSE(g.tensor(first).is_constant());
  EXPECT_TRUE(g.tensor(first).data().empty());

  ASSERT_EQ(m.warnings().size(), 1u);
  EXPECT_EQ(m.warnings()[0].code, "external_buffer_duplicate_id");
  const ModelSummary s = summarize(m);
  EXPECT_EQ(s.external_tensors, 3u);
  EXPECT_EQ(s.external_bytes, 40u);  // the buffer that two tensors share counts once
  EXPECT_EQ(s.constant_tensors, 0u);
}

TEST(model_test, reads_sparsity_parameters) {
  ModelBuilder b;
  const int sg = b.add_subgraph();
  std::vector<float> stored = {1, 0, 0, 4, 2, 3, 0, 0, 5, 0, 0, 6};
  const int t = b.add_constant(sg, "sparse", {4, 4}, tflite::TensorType_FLOAT32, to_bytes(stored));
  auto sp = std::make_unique<tflite::SparsityParametersT>();
  sp->traversal_order = {0, 1, 2, 3};
  sp->block_map = {0, 1};
  auto dense = [](int size) {
    auto d = std::make_unique<tflite::DimensionMetadataT>();
    d->format = tflite::DimensionType_DENSE;
    d->dense_size = size;
    return d;
  };
  sp->dim_metadata.push_back(dense(2));
  auto csr = std::make_unique<tflite::DimensionMetadataT>();
  csr->format = tflite::DimensionType_SPARSE_CSR;
  tflite::Uint8VectorT segments;
  segments.values = {0, 2, 3};
  tflite::Uint8VectorT indices;
  indices.values = {0, 1, 1};
  csr->array_segments.Set(std::move(segments));
  csr->array_indices.Set(std::move(indices));
  sp->dim_metadata.push_back(std::move(csr));
  sp->dim_metadata.push_back(dense(2));
  sp->dim_metadata.push_back(dense(2));
  b.tensor(sg, t).sparsity = std::move(sp);
  const Model m = Model::from_bytes(b.finish());
  const Tensor tensor = m.subgraph(0).tensor(t);
  EXPECT_TRUE(tensor.is_sparse());
  EXPECT_EQ(tensor.element_count(), 16u);
  EXPECT_EQ(tensor.data().size(), 12u * 4);
  const auto spec = tensor.sparsity();
  ASSERT_TRUE(spec);
  ASSERT_EQ(spec->levels.size(), 4u);
  EXPECT_TRUE(spec->levels[1].is_sparse);
  EXPECT_EQ(spec->levels[1].segments, (std::vector<std::int32_t>{0, 2, 3}));
  EXPECT_EQ(spec->levels[1].indices, (std::vector<std::int32_t>{0, 1, 1}));
}

TEST(model_test, reads_subgraphs_signatures_and_metadata) {
  ModelBuilder b;
  const int main_sg = b.add_subgraph("main");
  const int cond = b.add_subgraph("cond");
  const int body = b.add_subgraph("body");
  const int x = b.add_tensor(main_sg, "x", {1});
  const int y = b.add_tensor(main_sg, "y", {1});
  b.add_tensor(cond, "c", {1});
  b.add_tensor(body, "b", {1});
  const int op = b.add_operator(main_sg, b.add_opcode(tflite::BuiltinOperator_WHILE), {x}, {y});
  tflite::WhileOptionsT w;
  w.cond_subgraph_index = cond;
  w.body_subgraph_index = body;
  b.op(main_sg, op).builtin_options.Set(std::move(w));
  b.add_signature("serving_default", main_sg, {{"in", static_cast<std::uint32_t>(x)}}, {{"out", static_cast<std::uint32_t>(y)}});
  b.add_metadata("min_runtime_version", {'2', '.', '1', '0', 0, 0});
  const Model m = Model::from_bytes(b.finish());
  ASSERT_EQ(m.subgraph_count(), 3u);
  EXPECT_EQ(m.subgraph(2).name(), "body");
  const Value options = m.subgraph(0).op(0).options();
  EXPECT_EQ(options.find("cond_subgraph_index")->as_int(), 1);
  EXPECT_EQ(options.find("body_subgraph_index")->as_int(), 2);
  const auto sigs = m.signatures();
  ASSERT_EQ(sigs.size(), 1u);
  EXPECT_EQ(sigs[0].key, "serving_default");
  ASSERT_EQ(sigs[0].inputs.size(), 1u);
  EXPECT_EQ(sigs[0].inputs[0].name, "in");
  EXPECT_EQ(sigs[0].outputs[0].tensor, y);
  const auto meta = m.metadata("min_runtime_version");
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->size(), 6u);
  EXPECT_EQ(static_cast<char>((*meta)[0]), '2');
  EXPECT_FALSE(m.metadata("absent"));
  EXPECT_TRUE(m.warnings().empty());
}

TEST(model_test, decodes_flexbuffers_custom_options) {
  ModelBuilder b = conv_model();
  flexbuffers::Builder fbb;
  fbb.Map([&] {
    fbb.Int("max_detections", 100);
    fbb.Float("nms_iou_threshold", 0.5f);
    fbb.String("mode", "fast");
    fbb.Vector("scales", [&] {
      fbb.Int(1);
      fbb.Int(2);
    });
    fbb.Bool("use_regular_nms", false);
  });
  fbb.Finish();
  const int code = b.add_opcode(tflite::BuiltinOperator_CUSTOM, "TFLite_Detection_PostProcess");
  const int op = b.add_operator(0, code, {3}, {0});
  b.op(0, op).custom_options = fbb.GetBuffer();
  const Model m = Model::from_bytes(b.finish());
  const Operator custom = m.subgraph(0).op(op);
  EXPECT_TRUE(custom.is_custom());
  EXPECT_EQ(custom.op_name(), "CUSTOM");
  EXPECT_EQ(custom.custom_code(), "TFLite_Detection_PostProcess");
  EXPECT_EQ(custom.custom_options().size(), fbb.GetBuffer().size());
  const Value options = custom.options();
  EXPECT_EQ(options.find("max_detections")->as_int(), 100);
  EXPECT_DOUBLE_EQ(options.find("nms_iou_threshold")->as_double(), 0.5);
  EXPECT_EQ(options.find("mode")->as_string(), "fast");
  EXPECT_EQ(options.find("scales")->as_list().size(), 2u);
  EXPECT_FALSE(options.find("use_regular_nms")->as_bool());
}

TEST(model_test, summary_counts_shared_buffers_once) {
  ModelBuilder b = conv_model();
  // A second tensor sharing the filter's buffer, as converters deduplicate constants.
  b.add_tensor(0, "filter_alias", {4, 3, 3, 3}, tflite::TensorType_FLOAT32, static_cast<int>(b.tensor(0, 1).buffer));
  const Model m = Model::from_bytes(b.finish());
  const ModelSummary s = summarize(m);
  EXPECT_EQ(s.tensors, 5u);
  EXPECT_EQ(s.operators, 1u);
  EXPECT_EQ(s.constant_tensors, 3u);
  EXPECT_EQ(s.parameters, 108u + 4u);
  EXPECT_EQ(s.constant_bytes, (108u + 4u) * 4);
  EXPECT_EQ(s.op_histogram.at("CONV_2D"), 1u);
  EXPECT_EQ(s.by_dtype.at("float32").tensors, 3u);
}

TEST(model_test, warns_about_tolerated_oddities) {
  ModelBuilder b = conv_model();
  b.buffer(0).data = {1, 2, 3, 4};  // the sentinel should be empty; the runtime only warns
  const Model m = Model::from_bytes(b.finish());
  ASSERT_EQ(m.warnings().size(), 1u);
  EXPECT_EQ(m.warnings()[0].code, "nonempty_buffer0");
}

}  // namespace
}  // namespace litelens
