// Random and exhaustive damage: truncation at every section boundary and at random points, and
// random byte flips, over the built models and small real ones. Each sweep runs in a forked
// sandbox (hardening_support.h), so a crash, a hang or a memory blow-up is reported with the
// case that caused it instead of killing the test binary. Seeded from a fixed list (seeds() in
// hardening_support.h; LITELENS_SEED=N replays one seed, =random runs a fresh one, as `make soak`
// does), LITELENS_CORRUPTION_SCALE multiplies the number of random cases.
#include <gtest/gtest.h>

#include <set>

#include "hardening_support.h"
#include "model_zoo.h"

namespace litelens::hardening {
namespace {

// ---- Where the sections of a packed model begin and end ----------------------------------

class Boundaries {
 public:
  explicit Boundaries(const Bytes& b) : b_(b), base_(u8p(b)) {
    const auto* m = root(b);
    add(std::uint64_t{0});
    add(std::uint64_t{4});
    add(std::uint64_t{8});
    table(m);
    string(m->description());
    if (const auto* codes = m->operator_codes()) {
      vector(codes);
      for (const auto* c : *codes) {
        table(c);
        string(c->custom_code());
      }
    }
    if (const auto* buffers = m->buffers()) {
      vector(buffers);
      for (const auto* buf : *buffers) {
        table(buf);
        vector(buf->data());
        if (!buf->data() && buf->offset() > 1) {
          add(buf->offset());
          add(buf->offset() + buf->size());
        }
      }
    }
    if (const auto* meta = m->metadata()) {
      vector(meta);
      for (const auto* e : *meta) {
        table(e);
        string(e->name());
      }
    }
    vector(m->metadata_buffer());
    if (const auto* sigs = m->signature_defs()) {
      vector(sigs);
      for (const auto* s : *sigs) {
        table(s);
        string(s->signature_key());
        for (const auto* list : {s->inputs(), s->outputs()}) {
          vector(list);
          if (list)
            for (const auto* t : *list) {
              table(t);
              string(t->name());
            }
        }
      }
    }
    if (const auto* sgs = m->subgraphs()) {
      vector(sgs);
      for (const auto* sg : *sgs) subgraph(sg);
    }
    add(static_cast<std::uint64_t>(b.size()));
  }

  const std::set<std::uint64_t>& points() const { return points_; }

 private:
  void add(std::uint64_t at) {
    if (at <= b_.size()) points_.insert(at);
  }
  void add(const void* p) { add(static_cast<std::uint64_t>(static_cast<const std::uint8_t*>(p) - base_)); }
  void table(const void* t) {
    if (!t) return;
    const auto* vt = as_table(t)->GetVTable();
    add(vt);
    add(vt + get<std::uint16_t>(b_, pos(b_, vt)));
    add(t);
    add(static_cast<const std::uint8_t*>(t) + get<std::uint16_t>(b_, pos(b_, vt) + 2));
  }
  template <class T>
  void vector(const flatbuffers::Vector<T>* v) {
    if (!v) return;
    add(v);
    add(reinterpret_cast<const std::uint8_t*>(v->Data()) + v->size() * sizeof(T));  // offsets are 4 bytes
  }
  void string(const flatbuffers::String* s) {
    if (!s) return;
    add(s);
    add(s->c_str() + s->size() + 1);
  }
  void subgraph(const tflite::SubGraph* sg) {
    table(sg);
    string(sg->name());
    vector(sg->inputs());
    vector(sg->outputs());
    if (const auto* tensors = sg->tensors()) {
      vector(tensors);
      for (const auto* t : *tensors) {
        table(t);
        vector(t->shape());
        vector(t->shape_signature());
        string(t->name());
        if (const auto* q = t->quantization()) {
          table(q);
          vector(q->scale());
          vector(q->zero_point());
          vector(q->min());
          vector(q->max());
        }
        if (const auto* sp = t->sparsity()) {
          table(sp);
          vector(sp->traversal_order());
          vector(sp->block_map());
          if (const auto* dims = sp->dim_metadata()) {
            vector(dims);
            for (const auto* d : *dims) table(d);
          }
        }
      }
    }
    if (const auto* ops = sg->operators()) {
      vector(ops);
      for (const auto* op : *ops) {
        table(op);
        vector(op->inputs());
        vector(op->outputs());
        vector(op->intermediates());
        vector(op->custom_options());
        table(op->builtin_options());
        table(op->builtin_options_2());
        if (op->large_custom_options_offset() > 1) {
          add(op->large_custom_options_offset());
          add(op->large_custom_options_offset() + op->large_custom_options_size());
        }
      }
    }
  }

  const Bytes& b_;
  const std::uint8_t* base_;
  std::set<std::uint64_t> points_;
};

// Byte ranges a model keeps after its FlatBuffer (buffers and custom options by offset).
std::vector<std::pair<std::uint64_t, std::uint64_t>> outside_ranges(const Bytes& b) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  const auto* m = root(b);
  if (const auto* buffers = m->buffers())
    for (const auto* buf : *buffers)
      if (!buf->data() && buf->offset() > 1 && buf->size() > 0) out.emplace_back(buf->offset(), buf->offset() + buf->size());
  if (const auto* sgs = m->subgraphs())
    for (const auto* sg : *sgs)
      if (sg->operators())
        for (const auto* op : *sg->operators())
          if (!op->custom_options() && op->large_custom_options_offset() > 1)
            out.emplace_back(op->large_custom_options_offset(),
                             op->large_custom_options_offset() + op->large_custom_options_size());
  return out;
}

// What cutting an intact model at `cut` must give. `fb_end` is where its FlatBuffer ends
// (the verifier's computed size, rounded up to 4 bytes: cuts in those last bytes may pass).
Expect truncation_expectation(std::uint64_t cut, std::uint64_t fb_end,
                              const std::vector<std::pair<std::uint64_t, std::uint64_t>>& outside) {
  if (cut < 8) return fails(ErrorKind::truncated);
  if (cut + 3 < fb_end) return fails(ErrorKind::invalid_flatbuffer);
  if (cut < fb_end) return anything();
  for (const auto& [begin, end] : outside)
    if (end > cut) return fails(ErrorKind::buffer_out_of_file);
  return opens_any();
}

struct Base {
  std::string name;
  Bytes bytes;
};

std::vector<Base> built_bases() {
  std::vector<Base> out;
  for (auto& m : zoo()) out.push_back({m.name, std::move(m.bytes)});
  return out;
}

std::vector<Base> real_bases() {
  std::vector<Base> out;
  for (const auto& name : small_real_models())
    if (auto bytes = real_model(name)) out.push_back({name.substr(0, name.find('.')), std::move(*bytes)});
  return out;
}

// Memory a sweep may add on top of the test process: a copy of the input, the validator's
// records, a walk's decoded values, and the allocator's slack.
long memory_limit_kb(const std::vector<Base>& bases) {
  std::size_t largest = 0;
  for (const auto& b : bases) largest = std::max(largest, b.bytes.size());
  return static_cast<long>((std::size_t{96} << 10) + 48 * largest / 1024);
}

void report(const SandboxResult& r, const std::string& what) {
  std::printf("[ sandbox  ] %s: peak RSS growth %ld KiB%s\n", what.c_str(), r.rss_growth_kb,
              LITELENS_UNDER_ASAN ? " (not checked under ASan)" : "");
  for (const auto& f : r.failures) ADD_FAILURE() << f;
}

// ---- The sweeps --------------------------------------------------------------------------

TEST(corruption_sweep_test, truncate_at_every_section_boundary) {
  const auto bases = built_bases();
  std::size_t cases = 0;
  for (const auto& base : bases) {
    const Model intact = Model::from_bytes(base.bytes);
    const auto fb_end = intact.flatbuffer_size();
    const auto outside = outside_ranges(base.bytes);
    std::set<std::uint64_t> cuts;
    const Boundaries boundaries(base.bytes);
    for (std::uint64_t p : boundaries.points())
      for (std::int64_t d : {-1, 0, 1})
        if (static_cast<std::int64_t>(p) + d >= 0 && p + d < base.bytes.size()) cuts.insert(p + d);
    cases += cuts.size();
    const auto r = run_sandboxed(
        [&](std::vector<std::string>& failures, char* current) {
          for (std::uint64_t cut : cuts) {
            const std::string name = "cut_" + base.name + "_" + std::to_string(cut);
            set_current(current, name);
            // The CLI matrix gets every cut of conv_outside and a sample of the others.
            const bool log = base.name == "conv_outside" || cut % 13 == 0;
            const Bytes bytes(base.bytes.begin(), base.bytes.begin() + static_cast<std::ptrdiff_t>(cut));
            if (auto f = check_case(name, bytes, truncation_expectation(cut, fb_end, outside), log); !f.empty())
              failures.push_back(f);
          }
        },
        120, memory_limit_kb(bases));
    report(r, base.name + ": " + std::to_string(cuts.size()) + " cuts");
  }
  RecordProperty("cases", std::to_string(cases));
  std::printf("[ cases    ] %zu truncations at section boundaries\n", cases);
}

void random_sweep(const std::vector<Base>& bases, std::size_t truncations, std::size_t flips, std::size_t log_every,
                  const char* label) {
  announce_seeds();
  std::size_t cases = 0;
  for (std::size_t n = 0; n < seeds().size(); ++n) {
    const std::uint64_t seed = seeds()[n];
    // Case names carry the seed's place in the list once there are several.
    const std::string prefix = seeds().size() > 1 ? std::string(label) + "_s" + std::to_string(n) : std::string(label);
    for (std::size_t k = 0; k < bases.size(); ++k) {
      const auto& base = bases[k];
      const Model intact = Model::from_bytes(base.bytes);
      const auto fb_end = intact.flatbuffer_size();
      const auto outside = outside_ranges(base.bytes);
      const std::uint64_t base_seed = seed ^ (0x9e3779b97f4a7c15ull * (k + 1));
      const auto r = run_sandboxed(
          [&](std::vector<std::string>& failures, char* current) {
            std::mt19937_64 rng(base_seed);
            const auto size = base.bytes.size();
            for (std::size_t i = 0; i < truncations; ++i) {
              const std::uint64_t cut = rng() % size;
              const std::string name = prefix + "_cut_" + base.name + "_" + std::to_string(cut);
              set_current(current, name);
              const Bytes bytes(base.bytes.begin(), base.bytes.begin() + static_cast<std::ptrdiff_t>(cut));
              if (auto f = check_case(name, bytes, truncation_expectation(cut, fb_end, outside), i % log_every == 0);
                  !f.empty())
                failures.push_back(f);
            }
            // Flips aim mostly at the FlatBuffer (structure), sometimes anywhere.
            static constexpr std::uint8_t kInteresting[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe};
            Bytes bytes = base.bytes;
            for (std::size_t i = 0; i < flips; ++i) {
              const std::size_t count = 1 + rng() % 4;
              std::vector<std::pair<std::size_t, std::byte>> changed;
              std::string where;
              for (std::size_t j = 0; j < count; ++j) {
                const std::uint64_t span = (rng() % 4 == 0) ? size : std::max<std::uint64_t>(fb_end, 8);
                const std::size_t at = rng() % span;
                const std::uint8_t v = (rng() % 2) ? kInteresting[rng() % sizeof kInteresting]
                                                   : static_cast<std::uint8_t>(rng());
                changed.emplace_back(at, bytes[at]);
                bytes[at] = static_cast<std::byte>(v);
                where += "_" + std::to_string(at) + "x" + std::to_string(v);
              }
              const std::string name = prefix + "_flip_" + base.name + "_" + std::to_string(i);
              set_current(current, name + where);
              if (auto f = check_case(name, bytes, anything(), i % log_every == 0); !f.empty())
                failures.push_back(f + " (seed " + std::to_string(seed) + ", flips" + where + ")");
              for (auto it = changed.rbegin(); it != changed.rend(); ++it) bytes[it->first] = it->second;
            }
          },
          300, memory_limit_kb(bases));
      cases += truncations + flips;
      report(r, base.name + " (seed " + std::to_string(seed) + ")");
    }
  }
  ::testing::Test::RecordProperty("cases", std::to_string(cases));
  std::printf("[ cases    ] %zu random cases over %zu seeds\n", cases, seeds().size());
}

TEST(corruption_sweep_test, built_models_random_truncation_and_flips) {
  random_sweep(built_bases(), scaled(150), scaled(1500), 200, "rand");
}

TEST(corruption_sweep_test, real_models_random_truncation_and_flips) {
  const auto bases = real_bases();
  ASSERT_EQ(bases.size(), small_real_models().size());
  random_sweep(bases, scaled(40), scaled(150), 1000000, "real");
}

// Real models cut at the boundaries of their top-level sections (each vector of the root, the
// first and last table of each, the first and last buffer's data).
TEST(corruption_sweep_test, real_models_truncated_at_section_boundaries) {
  const auto bases = real_bases();
  ASSERT_EQ(bases.size(), small_real_models().size());
  std::size_t cases = 0;
  for (const auto& base : bases) {
    const auto* m = root(base.bytes);
    std::set<std::uint64_t> points{0, 4, 7, 8, pos(base.bytes, m)};
    const auto add_vector = [&](const auto* v) {
      if (!v || v->size() == 0) return;
      points.insert(pos(base.bytes, v));
      points.insert(pos(base.bytes, v->Get(0)));
      points.insert(pos(base.bytes, v->Get(v->size() - 1)));
    };
    add_vector(m->operator_codes());
    add_vector(m->subgraphs());
    add_vector(m->buffers());
    add_vector(m->metadata());
    add_vector(m->subgraphs()->Get(0)->tensors());
    add_vector(m->subgraphs()->Get(0)->operators());
    for (const auto* buf : *m->buffers())
      if (buf->data() && buf->data()->size() > 0) {
        points.insert(pos(base.bytes, buf->data()->data()));
        points.insert(pos(base.bytes, buf->data()->data() + buf->data()->size()));
      }
    const auto fb_end = Model::from_bytes(base.bytes).flatbuffer_size();
    std::vector<std::uint64_t> cuts;
    for (auto p : points)
      if (p < base.bytes.size()) cuts.push_back(p);
    // Keep the run short: the sections plus every 16th buffer edge.
    std::vector<std::uint64_t> chosen;
    for (std::size_t i = 0; i < cuts.size(); ++i)
      if (i < 24 || i % 16 == 0) chosen.push_back(cuts[i]);
    cases += chosen.size();
    const auto r = run_sandboxed(
        [&](std::vector<std::string>& failures, char* current) {
          for (auto cut : chosen) {
            const std::string name = "realcut_" + base.name + "_" + std::to_string(cut);
            set_current(current, name);
            const Bytes bytes(base.bytes.begin(), base.bytes.begin() + static_cast<std::ptrdiff_t>(cut));
            if (auto f = check_case(name, bytes, truncation_expectation(cut, fb_end, {}), false); !f.empty())
              failures.push_back(f);
          }
        },
        300, memory_limit_kb(bases));
    report(r, base.name + ": " + std::to_string(chosen.size()) + " cuts");
  }
  RecordProperty("cases", std::to_string(cases));
}

// Damage inside tensor payloads changes numbers, never structure: the model must still open with
// the same tensors, and the walk must still succeed.
TEST(corruption_sweep_test, payload_flips_keep_structure) {
  announce_seeds();
  std::size_t cases = 0;
  for (std::size_t n = 0; n < seeds().size(); ++n) {
    std::mt19937_64 rng(seeds()[n] ^ 0x5eedull);
    for (const auto& base : built_bases()) {
      const Model intact = Model::from_bytes(base.bytes);
      std::vector<std::pair<std::uint64_t, std::uint64_t>> payloads;
      for (const Subgraph sg : intact.subgraphs())
        for (const Tensor t : sg.tensors())
          if (t.is_constant() && t.dtype() != DType::string && !t.is_sparse())
            payloads.emplace_back(*t.data_offset(), t.data().size());
      if (payloads.empty()) continue;
      for (int i = 0; i < 40; ++i) {
        Bytes bytes = base.bytes;
        const auto& [offset, size] = payloads[rng() % payloads.size()];
        bytes[offset + rng() % size] ^= static_cast<std::byte>(1 + rng() % 255);
        const std::string name = "payload_" + (n ? "s" + std::to_string(n) + "_" : std::string()) + base.name + "_" +
                                 std::to_string(i);
        const Expect e = base.name == "odd" ? opens_any() : opens();
        const std::string failure = check_case(name, bytes, e, i % 10 == 0);
        EXPECT_TRUE(failure.empty()) << failure << " (seed " << seeds()[n] << ")";
        ++cases;
      }
    }
  }
  RecordProperty("cases", std::to_string(cases));
}

}  // namespace
}  // namespace litelens::hardening
