#include "model_zoo.h"

#include <flatbuffers/flexbuffers.h>

#include <array>
#include <cstring>
#include <stdexcept>

#include "conversion_metadata_generated.h"

namespace litelens::hardening {

using namespace tflite;
using litelens::testing::to_bytes;
namespace meta = tflite_metadata;
namespace conv = tflite_conversion;

namespace {

std::vector<std::uint8_t> u8(std::initializer_list<int> values) {
  std::vector<std::uint8_t> out;
  for (int v : values) out.push_back(static_cast<std::uint8_t>(v));
  return out;
}

std::unique_ptr<QuantizationParametersT> affine(std::vector<float> scale, std::vector<std::int64_t> zero_point,
                                                int axis = 0) {
  auto q = std::make_unique<QuantizationParametersT>();
  q->scale = std::move(scale);
  q->zero_point = std::move(zero_point);
  q->quantized_dimension = axis;
  return q;
}

std::vector<std::byte> pack(const ModelT& model) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(Model::Pack(fbb, &model), ModelIdentifier());
  const auto* p = reinterpret_cast<const std::byte*>(fbb.GetBufferPointer());
  return {p, p + fbb.GetSize()};
}

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = 0xffffffffu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// A one-file, stored (uncompressed) ZIP archive, as the metadata tooling appends.
std::vector<std::byte> tiny_zip() {
  const std::string name = "labels.txt";
  const std::string body = "background\nface\n";
  const std::uint32_t crc = crc32(reinterpret_cast<const std::uint8_t*>(body.data()), body.size());
  std::vector<std::uint8_t> z;
  const auto u16 = [&](std::uint32_t v) { z.push_back(v & 0xff); z.push_back((v >> 8) & 0xff); };
  const auto u32 = [&](std::uint32_t v) { u16(v & 0xffff); u16(v >> 16); };
  const auto str = [&](const std::string& s) { z.insert(z.end(), s.begin(), s.end()); };
  u32(0x04034b50); u16(10); u16(0); u16(0); u16(0); u16(0); u32(crc);
  u32(static_cast<std::uint32_t>(body.size())); u32(static_cast<std::uint32_t>(body.size()));
  u16(static_cast<std::uint32_t>(name.size())); u16(0); str(name); str(body);
  const auto central = static_cast<std::uint32_t>(z.size());
  u32(0x02014b50); u16(20); u16(10); u16(0); u16(0); u16(0); u16(0); u32(crc);
  u32(static_cast<std::uint32_t>(body.size())); u32(static_cast<std::uint32_t>(body.size()));
  u16(static_cast<std::uint32_t>(name.size())); u16(0); u16(0); u16(0); u16(0); u32(0); u32(0); str(name);
  const auto central_size = static_cast<std::uint32_t>(z.size()) - central;
  u32(0x06054b50); u16(0); u16(0); u16(1); u16(1); u32(central_size); u32(central); u16(0);
  std::vector<std::byte> out(z.size());
  std::memcpy(out.data(), z.data(), z.size());
  return out;
}

}  // namespace

void put16(std::vector<std::uint8_t>& v, std::uint64_t x) {
  for (int i = 0; i < 2; ++i) v.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
}
void put32(std::vector<std::uint8_t>& v, std::uint64_t x) {
  for (int i = 0; i < 4; ++i) v.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
}
void put64(std::vector<std::uint8_t>& v, std::uint64_t x) {
  for (int i = 0; i < 8; ++i) v.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
}
void set16(std::vector<std::uint8_t>& v, std::size_t at, std::uint64_t x) {
  for (int i = 0; i < 2; ++i) v[at + i] = static_cast<std::uint8_t>(x >> (8 * i));
}
void set32(std::vector<std::uint8_t>& v, std::size_t at, std::uint64_t x) {
  for (int i = 0; i < 4; ++i) v[at + i] = static_cast<std::uint8_t>(x >> (8 * i));
}
void set64(std::vector<std::uint8_t>& v, std::size_t at, std::uint64_t x) {
  for (int i = 0; i < 8; ++i) v[at + i] = static_cast<std::uint8_t>(x >> (8 * i));
}
std::uint32_t get32(const std::vector<std::uint8_t>& v, std::size_t at) {
  return static_cast<std::uint32_t>(v[at]) | (static_cast<std::uint32_t>(v[at + 1]) << 8) |
         (static_cast<std::uint32_t>(v[at + 2]) << 16) | (static_cast<std::uint32_t>(v[at + 3]) << 24);
}

std::uint32_t zip_crc32(std::span<const std::uint8_t> data) { return crc32(data.data(), data.size()); }

ZipEntry stored_entry(std::string name, const std::string& content) {
  ZipEntry e;
  e.name = std::move(name);
  e.stored.assign(content.begin(), content.end());
  e.size = static_cast<std::uint32_t>(content.size());
  e.crc = zip_crc32(e.stored);
  return e;
}

ZipEntry deflate_block_entry(std::string name, const std::string& content) {
  ZipEntry e = stored_entry(std::move(name), content);
  std::vector<std::uint8_t> d{0x01};  // BFINAL=1, BTYPE=00
  put16(d, content.size());
  put16(d, ~content.size() & 0xFFFF);
  d.insert(d.end(), content.begin(), content.end());
  e.stored = std::move(d);
  e.method = 8;
  return e;
}

const std::string& animals_text() {
  static const std::string text = [] {
    std::string s;
    for (int i = 0; i < 4; ++i) s += "cat\ndog\ncat\ndog\ncat\ndog\nbird\n";
    return s;
  }();
  return text;
}
ZipEntry deflated_animals(std::string name) {
  ZipEntry e = stored_entry(std::move(name), animals_text());
  e.stored = {0x4b, 0x4e, 0x2c, 0xe1, 0x4a, 0xc9, 0x4f, 0xe7, 0x4a, 0x46, 0xa3,
              0x93, 0x32, 0x8b, 0x52, 0x30, 0x04, 0xa9, 0x24, 0x09, 0x00};
  e.method = 8;
  return e;
}


Zip make_zip(const std::vector<ZipEntry>& entries, std::uint64_t base, const ZipOptions& o) {
  Zip z;
  auto& b = z.bytes;
  const std::uint64_t shift = o.relative ? 0 : base;
  for (const auto& e : entries) {
    z.local.push_back(b.size());
    put32(b, 0x04034b50);
    put16(b, o.zip64 ? 45 : 20);
    put16(b, e.flags);
    put16(b, e.method);
    put16(b, 0);
    put16(b, 0x21);
    put32(b, e.crc);
    put32(b, o.zip64 ? 0xFFFFFFFF : e.stored.size());
    put32(b, o.zip64 ? 0xFFFFFFFF : e.size);
    put16(b, e.name.size());
    put16(b, o.zip64 ? 20 : 0);
    b.insert(b.end(), e.name.begin(), e.name.end());
    if (o.zip64) {
      put16(b, 1);
      put16(b, 16);
      put64(b, e.size);
      put64(b, e.stored.size());
    }
    b.insert(b.end(), e.stored.begin(), e.stored.end());
  }
  z.cd = b.size();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    z.central.push_back(b.size());
    put32(b, 0x02014b50);
    put16(b, 0x031E);
    put16(b, o.zip64 ? 45 : 20);
    put16(b, e.flags);
    put16(b, e.method);
    put16(b, 0);
    put16(b, 0x21);
    put32(b, e.crc);
    put32(b, o.zip64 ? 0xFFFFFFFF : e.stored.size());
    put32(b, o.zip64 ? 0xFFFFFFFF : e.size);
    put16(b, e.name.size());
    put16(b, o.zip64 ? 28 : 0);
    put16(b, 0);
    put16(b, 0);
    put16(b, 0);
    put32(b, e.external_attributes);
    put32(b, o.zip64 ? 0xFFFFFFFF : shift + z.local[i]);
    b.insert(b.end(), e.name.begin(), e.name.end());
    if (o.zip64) {
      put16(b, 1);
      put16(b, 24);
      put64(b, e.size);
      put64(b, e.stored.size());
      put64(b, shift + z.local[i]);
    }
  }
  const std::size_t cd_size = b.size() - z.cd;
  if (o.zip64) {
    z.zip64_record = b.size();
    put32(b, 0x06064b50);
    put64(b, 44);
    put16(b, 45);
    put16(b, 45);
    put32(b, 0);
    put32(b, 0);
    put64(b, entries.size());
    put64(b, entries.size());
    put64(b, cd_size);
    put64(b, shift + z.cd);
    z.zip64_locator = b.size();
    put32(b, 0x07064b50);
    put32(b, 0);
    put64(b, shift + z.zip64_record);
    put32(b, 1);
  }
  z.eocd = b.size();
  put32(b, 0x06054b50);
  put16(b, 0);
  put16(b, 0);
  put16(b, o.zip64 ? 0xFFFF : entries.size());
  put16(b, o.zip64 ? 0xFFFF : entries.size());
  put32(b, o.zip64 ? 0xFFFFFFFF : cd_size);
  put32(b, o.zip64 ? 0xFFFFFFFF : shift + z.cd);
  put16(b, o.comment.size());
  b.insert(b.end(), o.comment.begin(), o.comment.end());
  return z;
}

std::vector<std::byte> with_archive(std::vector<std::byte> model, const Zip& z) {
  for (auto c : z.bytes) model.push_back(static_cast<std::byte>(c));
  return model;
}

std::vector<std::uint8_t> pack_model_metadata(const meta::ModelMetadataT& m) {
  flatbuffers::FlatBufferBuilder fbb;
  meta::FinishModelMetadataBuffer(fbb, meta::ModelMetadata::Pack(fbb, &m));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

// Uses every table, union member and enum of the metadata schema.
meta::ModelMetadataT sample_model_metadata() {
  meta::ModelMetadataT m;
  m.name = "Bird classifier";
  m.description = "Finds birds in pictures and sounds.";
  m.version = "v3";
  m.author = "litelens tests";
  m.license = "Apache-2.0";
  m.min_parser_version = "1.5.0";
  m.associated_files.push_back(file_ref("README.txt", meta::AssociatedFileType_DESCRIPTIONS, "", "", "how to use"));

  auto sg = std::make_unique<meta::SubGraphMetadataT>();
  sg->name = "main";
  sg->description = "the only subgraph";

  auto image = std::make_unique<meta::TensorMetadataT>();
  image->name = "image";
  image->description = "an RGB picture";
  image->dimension_names = {"batch", "height", "width", "channels"};
  image->content = std::make_unique<meta::ContentT>();
  meta::ImagePropertiesT props;
  props.color_space = meta::ColorSpaceType_RGB;
  props.default_size = std::make_unique<meta::ImageSizeT>();
  props.default_size->width = 224;
  props.default_size->height = 192;
  image->content->content_properties.Set(std::move(props));
  image->content->range = std::make_unique<meta::ValueRangeT>();
  image->content->range->min = 1;
  image->content->range->max = 2;
  meta::NormalizationOptionsT norm;
  norm.mean = {127.5f};
  norm.std = {127.5f, 64.0f, 32.0f};
  image->process_units.push_back(unit(std::move(norm)));
  image->stats = std::make_unique<meta::StatsT>();
  image->stats->max = {255.0f};
  image->stats->min = {0.0f};
  sg->input_tensor_metadata.push_back(std::move(image));

  auto audio = std::make_unique<meta::TensorMetadataT>();
  audio->name = "audio";
  audio->content = std::make_unique<meta::ContentT>();
  meta::AudioPropertiesT sound;
  sound.sample_rate = 16000;
  sound.channels = 2;
  audio->content->content_properties.Set(std::move(sound));
  sg->input_tensor_metadata.push_back(std::move(audio));

  auto scores = std::make_unique<meta::TensorMetadataT>();
  scores->name = "scores";
  scores->content = std::make_unique<meta::ContentT>();
  scores->content->content_properties.Set(meta::FeaturePropertiesT{});
  meta::ScoreCalibrationOptionsT calibration;
  calibration.score_transformation = meta::ScoreTransformationType_INVERSE_LOGISTIC;
  calibration.default_score = 0.25f;
  scores->process_units.push_back(unit(std::move(calibration)));
  meta::ScoreThresholdingOptionsT threshold;
  threshold.global_score_threshold = 0.5f;
  scores->process_units.push_back(unit(std::move(threshold)));
  scores->associated_files.push_back(file_ref("labels.txt", meta::AssociatedFileType_TENSOR_AXIS_LABELS, "en", "2"));
  scores->associated_files.push_back(file_ref("labels_fr.txt", meta::AssociatedFileType_TENSOR_AXIS_LABELS, "fr"));
  sg->output_tensor_metadata.push_back(std::move(scores));

  auto boxes = std::make_unique<meta::TensorMetadataT>();
  boxes->name = "boxes";
  boxes->content = std::make_unique<meta::ContentT>();
  meta::BoundingBoxPropertiesT box;
  box.index = {1, 0, 3, 2};
  box.type = meta::BoundingBoxType_CENTER;
  box.coordinate_type = meta::CoordinateType_PIXEL;
  boxes->content->content_properties.Set(std::move(box));
  sg->output_tensor_metadata.push_back(std::move(boxes));

  meta::BertTokenizerOptionsT bert;
  bert.vocab_file.push_back(file_ref("vocab.txt", meta::AssociatedFileType_VOCABULARY));
  sg->input_process_units.push_back(unit(std::move(bert)));
  meta::SentencePieceTokenizerOptionsT sp;
  sp.sentencePiece_model.push_back(file_ref("sp.model", meta::AssociatedFileType_DESCRIPTIONS));
  sp.vocab_file.push_back(file_ref("sp.vocab", meta::AssociatedFileType_VOCABULARY));
  sg->output_process_units.push_back(unit(std::move(sp)));
  meta::RegexTokenizerOptionsT regex;
  regex.delim_regex_pattern = "[ ,]+";
  regex.vocab_file.push_back(file_ref("vocab.txt", meta::AssociatedFileType_VOCABULARY));
  sg->output_process_units.push_back(unit(std::move(regex)));

  auto group = std::make_unique<meta::TensorGroupT>();
  group->name = "detections";
  group->tensor_names = {"scores", "boxes"};
  sg->output_tensor_groups.push_back(std::move(group));
  auto in_group = std::make_unique<meta::TensorGroupT>();
  in_group->name = "media";
  in_group->tensor_names = {"image", "audio"};
  sg->input_tensor_groups.push_back(std::move(in_group));
  sg->associated_files.push_back(file_ref("index.scann", meta::AssociatedFileType_SCANN_INDEX_FILE));
  auto custom = std::make_unique<meta::CustomMetadataT>();
  custom->name = "vendor.settings";
  custom->data = {1, 2, 3, 250};
  sg->custom_metadata.push_back(std::move(custom));
  m.subgraph_metadata.push_back(std::move(sg));
  return m;
}

std::vector<std::uint8_t> sample_conversion_metadata() {
  conv::ConversionMetadataT c;
  c.environment = std::make_unique<conv::EnvironmentT>();
  c.environment->tensorflow_version = "2.16.1";
  c.environment->api_version = 2;
  c.environment->model_type = conv::ModelType_KERAS_MODEL;
  c.environment->model_hash = 0x0123456789abcdefULL;
  c.options = std::make_unique<conv::ConversionOptionsT>();
  c.options->model_optimization_modes = {conv::ModelOptimizationMode_PTQ_FULL_INTEGER,
                                         static_cast<conv::ModelOptimizationMode>(4242)};
  c.options->allow_custom_ops = true;
  c.options->force_select_tf_ops = true;
  auto block = std::make_unique<conv::SparsityBlockSizeT>();
  block->values = {4, 1};
  c.options->sparsity_block_sizes.push_back(std::move(block));
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(conv::ConversionMetadata::Pack(fbb, &c));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

ModelBuilder metadata_model() {
  ModelBuilder b = litelens::testing::conv_model();
  std::vector<std::uint8_t> version(16, 0);
  const char text[] = "2.3.0";
  std::memcpy(version.data(), text, sizeof(text) - 1);
  b.add_metadata("min_runtime_version", version);
  b.add_metadata("TFLITE_METADATA", pack_model_metadata(sample_model_metadata()));
  b.add_metadata("CONVERSION_METADATA", sample_conversion_metadata());
  return b;
}

std::vector<std::uint8_t> sample_flexbuffer() {
  flexbuffers::Builder fbb;
  fbb.Map([&] {
    fbb.Double("alpha", 0.5);
    fbb.Int("axis", -1);
    fbb.UInt("count", 7);
    fbb.Bool("enabled", true);
    fbb.String("mode", "fast");
    fbb.Vector("dims", [&] {
      fbb.Int(1);
      fbb.Int(2);
      fbb.Int(3);
    });
    fbb.TypedVector("scales", [&] {
      fbb.Double(0.25);
      fbb.Double(4.0);
    });
    fbb.Map("nested", [&] {
      fbb.Bool("x", true);
      fbb.Null("nothing");
    });
    const std::uint8_t blob[] = {0xde, 0xad, 0xbe, 0xef};
    fbb.Key("blob");
    fbb.Blob(blob, sizeof(blob));
  });
  fbb.Finish();
  return fbb.GetBuffer();
}

ModelBuilder quantized_model() {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "input", {1, 8, 8, 3}, TensorType_INT8);
  std::vector<std::int8_t> filter(4 * 3 * 3 * 3);
  for (std::size_t i = 0; i < filter.size(); ++i) filter[i] = static_cast<std::int8_t>(static_cast<int>(i % 255) - 127);
  b.add_constant(sg, "conv/filter", {4, 3, 3, 3}, TensorType_INT8, to_bytes(filter));
  b.add_constant(sg, "conv/bias", {4}, TensorType_INT32, to_bytes(std::vector<std::int32_t>{100, -200, 300, -400}));
  b.add_tensor(sg, "conv/output", {1, 3, 3, 4}, TensorType_INT8);
  b.tensor(sg, 0).quantization = affine({0.5f}, {-1});
  b.tensor(sg, 0).quantization->min = {-64.0f};
  b.tensor(sg, 0).quantization->max = {63.5f};
  b.tensor(sg, 1).quantization = affine({0.01f, 0.02f, 0.03f, 0.04f}, {0, 0, 0, 0}, 0);
  b.tensor(sg, 2).quantization = affine({0.005f, 0.01f, 0.015f, 0.02f}, {0, 0, 0, 0}, 0);
  b.tensor(sg, 3).quantization = affine({0.25f}, {3});
  const int code = b.add_opcode(BuiltinOperator_CONV_2D, "", 3);
  const int op = b.add_operator(sg, code, {0, 1, 2}, {3});
  Conv2DOptionsT options;
  options.padding = Padding_VALID;
  options.stride_w = 2;
  options.stride_h = 2;
  b.op(sg, op).builtin_options.Set(std::move(options));
  b.subgraph(sg).inputs = {0};
  b.subgraph(sg).outputs = {3};
  return b;
}

ModelBuilder sparse_model() {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "input", {1, 4});
  const std::vector<float> stored{1, 0, 0, 4, 2, 3, 0, 0, 5, 0, 0, 6};
  b.add_constant(sg, "fc/weights_block_sparse", {4, 4}, TensorType_FLOAT32, to_bytes(stored));
  b.add_tensor(sg, "fc/output", {1, 4});
  b.add_constant(sg, "fc/weights_csr", {3, 4}, TensorType_FLOAT32, to_bytes(std::vector<float>{7, 8, 9}));

  auto block = std::make_unique<SparsityParametersT>();
  block->traversal_order = {0, 1, 2, 3};
  block->block_map = {0, 1};
  const auto level = [](DimensionType format, int dense_size) {
    auto d = std::make_unique<DimensionMetadataT>();
    d->format = format;
    d->dense_size = dense_size;
    return d;
  };
  block->dim_metadata.push_back(level(DimensionType_DENSE, 2));
  auto csr = level(DimensionType_SPARSE_CSR, 0);
  Int32VectorT segments;
  segments.values = {0, 2, 3};
  Int32VectorT indices;
  indices.values = {0, 1, 1};
  csr->array_segments.Set(std::move(segments));
  csr->array_indices.Set(std::move(indices));
  block->dim_metadata.push_back(std::move(csr));
  block->dim_metadata.push_back(level(DimensionType_DENSE, 2));
  block->dim_metadata.push_back(level(DimensionType_DENSE, 2));
  b.tensor(sg, 1).sparsity = std::move(block);

  auto plain = std::make_unique<SparsityParametersT>();
  plain->traversal_order = {0, 1};
  plain->dim_metadata.push_back(level(DimensionType_DENSE, 3));
  auto csr8 = level(DimensionType_SPARSE_CSR, 0);
  Uint8VectorT seg8;
  seg8.values = {0, 1, 1, 3};
  Uint8VectorT idx8;
  idx8.values = {2, 0, 3};
  csr8->array_segments.Set(std::move(seg8));
  csr8->array_indices.Set(std::move(idx8));
  plain->dim_metadata.push_back(std::move(csr8));
  b.tensor(sg, 3).sparsity = std::move(plain);

  const int code = b.add_opcode(BuiltinOperator_FULLY_CONNECTED);
  const int op = b.add_operator(sg, code, {0, 1, -1}, {2});
  FullyConnectedOptionsT options;
  options.fused_activation_function = ActivationFunctionType_RELU;
  b.op(sg, op).builtin_options.Set(std::move(options));
  b.subgraph(sg).inputs = {0};
  b.subgraph(sg).outputs = {2};
  return b;
}

ModelBuilder string_model() {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_constant(sg, "labels", {2}, TensorType_STRING, u8({2, 0, 0, 0, 16, 0, 0, 0, 18, 0, 0, 0, 18, 0, 0, 0, 'A', 'B'}));
  b.add_constant(sg, "scalar", {}, TensorType_STRING, u8({1, 0, 0, 0, 12, 0, 0, 0, 15, 0, 0, 0, 'x', 'y', 'z'}));
  b.add_tensor(sg, "out", {2}, TensorType_STRING);
  b.subgraph(sg).outputs = {2};
  return b;
}

ModelBuilder control_flow_model() {
  ModelBuilder b;
  const int main = b.add_subgraph("main");
  const int cond = b.add_subgraph("cond");
  const int body = b.add_subgraph("body");
  const int init = b.add_subgraph("init");
  for (int sg : {main, cond, body, init}) {
    b.add_tensor(sg, "i", {}, TensorType_INT32);
    b.add_tensor(sg, "x", {1}, TensorType_FLOAT32);
  }
  b.add_tensor(main, "flag", {}, TensorType_BOOL);
  b.add_tensor(main, "i_out", {}, TensorType_INT32);
  b.add_tensor(main, "x_out", {1}, TensorType_FLOAT32);
  b.add_tensor(cond, "keep_going", {}, TensorType_BOOL);
  b.add_constant(cond, "limit", {}, TensorType_INT32, to_bytes(std::vector<std::int32_t>{10}));

  const int op_while = b.add_opcode(BuiltinOperator_WHILE);
  const int op_if = b.add_opcode(BuiltinOperator_IF);
  const int op_once = b.add_opcode(BuiltinOperator_CALL_ONCE);
  const int op_less = b.add_opcode(BuiltinOperator_LESS);
  const int op_add = b.add_opcode(BuiltinOperator_ADD);
  const int op_composite = b.add_opcode(BuiltinOperator_STABLEHLO_COMPOSITE);

  const int w = b.add_operator(main, op_while, {0, 1}, {3, 4});
  WhileOptionsT wo;
  wo.cond_subgraph_index = cond;
  wo.body_subgraph_index = body;
  b.op(main, w).builtin_options.Set(std::move(wo));
  const int i = b.add_operator(main, op_if, {2, 0, 1}, {3, 4});
  IfOptionsT io;
  io.then_subgraph_index = body;
  io.else_subgraph_index = init;
  b.op(main, i).builtin_options.Set(std::move(io));
  const int o = b.add_operator(main, op_once, {-1}, {-1});
  CallOnceOptionsT co;
  co.init_subgraph_index = init;
  b.op(main, o).builtin_options.Set(std::move(co));
  const int c = b.add_operator(main, op_composite, {0, 1}, {3, 4});
  StableHLOCompositeOptionsT so;
  so.name = "litelens.composite";
  so.decomposition_subgraph_index = body;
  so.composite_attributes = sample_flexbuffer();
  so.version = 1;
  b.op(main, c).builtin_options_2.Set(std::move(so));

  b.add_operator(cond, op_less, {0, 3}, {2});
  b.add_operator(body, op_add, {1, 1}, {1});
  for (int sg : {main, cond, body, init}) b.subgraph(sg).inputs = {0, 1};
  b.subgraph(main).outputs = {3, 4};
  b.subgraph(cond).outputs = {2};
  b.subgraph(body).outputs = {0, 1};
  b.subgraph(init).outputs = {};
  return b;
}

ModelBuilder signature_model() {
  ModelBuilder b = litelens::testing::conv_model();
  b.add_signature("serving_default", 0, {{"image", 0}}, {{"features", 3}});
  b.add_signature("features_only", 0, {{"x", 0}}, {});
  std::vector<std::uint8_t> version(16, 0);
  const char text[] = "1.14.0";
  std::memcpy(version.data(), text, sizeof(text) - 1);
  b.add_metadata("min_runtime_version", version);
  std::vector<std::uint8_t> meta(64);
  for (std::size_t k = 0; k < meta.size(); ++k) meta[k] = static_cast<std::uint8_t>(k * 7);
  b.add_metadata("litelens_notes", meta);
  b.model().metadata_buffer = {static_cast<std::int32_t>(b.model().buffers.size() - 1)};
  return b;
}

ModelBuilder custom_model() {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "in", {4});
  b.add_tensor(sg, "out", {4});
  const int code = b.add_opcode(BuiltinOperator_CUSTOM, "LitelensCustom");
  const int op = b.add_operator(sg, code, {0}, {1});
  b.op(sg, op).custom_options = sample_flexbuffer();
  b.subgraph(sg).inputs = {0};
  b.subgraph(sg).outputs = {1};
  return b;
}

ModelBuilder subbyte_model() {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "input", {1, 6});
  std::vector<std::uint8_t> packed(12);
  for (std::size_t k = 0; k < packed.size(); ++k) packed[k] = static_cast<std::uint8_t>(0x10 * (k % 16) + (15 - k % 16));
  b.add_constant(sg, "fc/weights_int4", {4, 6}, TensorType_INT4, packed);
  std::vector<std::uint16_t> scales(12, 0x3c00);  // float16 1.0
  b.add_constant(sg, "fc/scales", {4, 3}, TensorType_FLOAT16, to_bytes(scales));
  b.add_tensor(sg, "fc/output", {1, 4});
  b.add_constant(sg, "int2", {5}, TensorType_INT2, u8({0x84, 0x01}));
  b.add_constant(sg, "uint4", {3}, TensorType_UINT4, u8({0x21, 0x03}));
  auto q = std::make_unique<QuantizationParametersT>();
  BlockwiseQuantizationT bq;
  bq.scales = 2;
  bq.zero_points = -1;
  bq.block_size = 2;
  q->details.Set(std::move(bq));
  b.tensor(sg, 1).quantization = std::move(q);
  const int code = b.add_opcode(BuiltinOperator_FULLY_CONNECTED, "", 13);
  b.add_operator(sg, code, {0, 1, -1}, {3});
  b.subgraph(sg).inputs = {0};
  b.subgraph(sg).outputs = {3};
  return b;
}

ModelBuilder odd_model() {
  ModelBuilder b;
  const int sg = b.add_subgraph("main");
  b.add_tensor(sg, "dynamic", {1, 1, 3});
  b.tensor(sg, 0).shape_signature = {-1, -1, 3};
  b.add_tensor(sg, "future_dtype", {2}, static_cast<TensorType>(100));
  b.add_tensor(sg, "state", {1, 4});
  b.tensor(sg, 2).is_variable = true;
  b.add_tensor(sg, "unknown_rank", {});
  b.add_tensor(sg, "scalar", {});
  b.tensor(sg, 4).has_rank = true;
  b.add_tensor(sg, "external", {4}, TensorType_FLOAT32, 0);
  auto group = std::make_unique<ExternalBufferGroupT>();
  group->name = "weights.bin";
  b.model().external_buffer_groups.push_back(std::move(group));
  auto ext = std::make_unique<ExternalBufferT>();
  ext->id = 0x80000000u;
  ext->group = 0;
  ext->offset = 64;
  ext->length = 16;
  b.model().external_buffers.push_back(std::move(ext));
  b.tensor(sg, 5).external_buffer = 0x80000000u;
  const int future_op = b.add_opcode(static_cast<BuiltinOperator>(500));
  const int gelu = b.add_opcode(BuiltinOperator_GELU, "", 2);
  b.add_operator(sg, future_op, {0, 5}, {3});
  const int g = b.add_operator(sg, gelu, {0}, {4});
  GeluOptionsT go;
  go.approximate = true;
  b.op(sg, g).builtin_options.Set(std::move(go));
  b.subgraph(sg).inputs = {0, 2};
  b.subgraph(sg).outputs = {3, 4};
  return b;
}

std::vector<std::byte> finish_with_outside_custom_options(ModelBuilder& b, int sg, int op) {
  OperatorT& o = b.op(sg, op);
  std::vector<std::uint8_t> payload = std::move(o.custom_options);
  o.custom_options.clear();
  o.large_custom_options_offset = 1;  // placeholders keep the fields present, as converters do
  o.large_custom_options_size = 1;
  const std::size_t fb_size = pack(b.model()).size();
  const std::size_t start = fb_size + (16 - fb_size % 16);
  o.large_custom_options_offset = start;
  o.large_custom_options_size = payload.size();
  auto out = pack(b.model());
  if (out.size() != fb_size) throw std::logic_error("model zoo: FlatBuffer size changed when patching offsets");
  out.resize(start, std::byte{0});
  for (auto v : payload) out.push_back(static_cast<std::byte>(v));
  while (out.size() % 16) out.push_back(std::byte{0});
  return out;
}

std::vector<ZooModel> zoo() {
  std::vector<ZooModel> out;
  out.push_back({"conv", litelens::testing::conv_model().finish()});
  {
    auto b = litelens::testing::conv_model();
    b.store_outside(1);
    b.store_outside(2);
    out.push_back({"conv_outside", b.finish()});
  }
  {
    auto bytes = litelens::testing::conv_model().finish();
    const auto zip = tiny_zip();
    bytes.insert(bytes.end(), zip.begin(), zip.end());
    out.push_back({"conv_zip", std::move(bytes)});
  }
  out.push_back({"quantized", quantized_model().finish()});
  out.push_back({"sparse", sparse_model().finish()});
  {
    auto b = sparse_model();
    b.store_outside(1);
    b.store_outside(2);
    out.push_back({"sparse_outside", b.finish()});
  }
  out.push_back({"string", string_model().finish()});
  out.push_back({"control_flow", control_flow_model().finish()});
  out.push_back({"signature", signature_model().finish()});
  out.push_back({"custom", custom_model().finish()});
  {
    auto b = custom_model();
    out.push_back({"custom_outside", finish_with_outside_custom_options(b, 0, 0)});
  }
  out.push_back({"subbyte", subbyte_model().finish()});
  out.push_back({"odd", odd_model().finish()});
  // The files the sample metadata names, so that `info` finds them in the archive.
  const std::vector<ZipEntry> files = {stored_entry("labels.txt", "sparrow\nrobin\nwren\n"),
                                       deflated_animals("labels_fr.txt"),
                                       deflate_block_entry("vocab.txt", "[PAD]\n[UNK]\nbird\n"),
                                       stored_entry("sp.model", std::string(48, '\x07')), stored_entry("sp.vocab", "a\nb\n"),
                                       stored_entry("README.txt", "how to use"),
                                       stored_entry("index.scann", std::string(16, '\x01'))};
  {
    auto bytes = metadata_model().finish();
    const Zip z = make_zip(files, bytes.size(), {.comment = "litelens zoo"});
    out.push_back({"metadata_zip", with_archive(std::move(bytes), z)});
  }
  {
    auto b = metadata_model();
    b.store_outside(1);
    b.store_outside(2);
    auto bytes = b.finish();
    const Zip z = make_zip(files, bytes.size(), {.relative = true, .zip64 = true});
    out.push_back({"metadata_zip64", with_archive(std::move(bytes), z)});
  }
  return out;
}

}  // namespace litelens::hardening
