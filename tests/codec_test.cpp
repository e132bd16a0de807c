#include <doctest/doctest.h>

#include <atasker/codec.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace at = atasker;
using at::detail::ByteReader;
using at::detail::ByteWriter;
using at::detail::SlotOverflow;

namespace {

/// A slot-sized buffer with a writer over it; reader() reads back what was written.
struct Slot {
    explicit Slot(std::size_t capacity = 1 << 16) : bytes(capacity), writer(bytes.data(), bytes.size()) {}
    [[nodiscard]] ByteReader reader() const { return {bytes.data(), writer.size()}; }
    std::vector<std::byte> bytes;
    ByteWriter writer;
};

template <class T>
T round_trip(const T& value) {
    Slot slot;
    at::encode(slot.writer, value);
    ByteReader in = slot.reader();
    T back = at::decode<T>(in);
    CHECK(in.remaining() == 0);
    return back;
}

enum class Color : std::uint8_t { red = 1, green = 2 };
enum Plain { plain_a = -5, plain_b = 70000 };

struct Point {  // customization through a serialize member
    double x = 0;
    double y = 0;
    std::string label;
    std::vector<std::optional<int>> tags;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(x, y, label, tags);
    }
    bool operator==(const Point&) const = default;
};

}  // namespace

namespace geo {  // customization through a free function found by ADL
struct Box {
    Point lo;
    Point hi;
    std::map<std::string, std::pair<int, double>> meta;
    bool operator==(const Box&) const = default;
};
template <class Archive>
void serialize(Archive& ar, Box& b) {
    ar(b.lo, b.hi, b.meta);
}
}  // namespace geo

namespace {

class Secret {  // a private serialize member, reached through cereal::access
public:
    Secret() = default;
    explicit Secret(int v) : v_(v) {}
    [[nodiscard]] int value() const { return v_; }

private:
    friend class cereal::access;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(v_);
    }
    int v_ = 0;
};

struct NoSerialize {
    int x;
};

struct Nothing {  // a user type whose serialize writes nothing
    template <class Archive>
    void serialize(Archive&) {}
    bool operator==(const Nothing&) const = default;
};

struct Nothings {  // a container of empty elements inside a user type (cereal's path)
    std::vector<Nothing> items;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(items);
    }
};

/// A message holding an empty T, its count (at byte 8) then set to `count`.
template <class T>
Slot with_count(std::uint64_t count) {
    Slot slot;
    at::encode(slot.writer, T{});
    std::memcpy(slot.bytes.data() + 8, &count, sizeof(count));
    return slot;
}

}  // namespace

TEST_CASE("codec: arithmetic values and enums come back bit for bit") {
    CHECK(round_trip(42) == 42);
    CHECK(round_trip(true) == true);
    CHECK(round_trip(false) == false);
    CHECK(round_trip('z') == 'z');
    CHECK(round_trip(std::int8_t{-7}) == -7);
    CHECK(round_trip(std::uint64_t{0xfedcba9876543210ULL}) == 0xfedcba9876543210ULL);
    CHECK(round_trip(std::numeric_limits<std::int64_t>::min()) == std::numeric_limits<std::int64_t>::min());
    CHECK(round_trip(3.25f) == 3.25f);
    CHECK(round_trip(-1e300) == -1e300);
    CHECK(round_trip(1.5L) == 1.5L);
    CHECK(round_trip(Color::green) == Color::green);
    CHECK(round_trip(plain_b) == plain_b);
    CHECK(round_trip(plain_a) == plain_a);
}

TEST_CASE("codec: strings come back whole, empty, large and with embedded zeros") {
    CHECK(round_trip(std::string()) == "");
    CHECK(round_trip(std::string("hello")) == "hello");
    const std::string zeros("a\0b\0c", 5);
    CHECK(round_trip(zeros) == zeros);
    std::string large(50'000, 'x');
    for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>('a' + i % 26);
    CHECK(round_trip(large) == large);
    CHECK(round_trip(std::u32string(U"\u00e9t\u00e9")) == U"\u00e9t\u00e9");
}

TEST_CASE("codec: vectors, maps, arrays and optionals come back, empty or full") {
    CHECK(round_trip(std::vector<int>{}).empty());
    CHECK(round_trip(std::vector<int>{1, -2, 3}) == std::vector<int>{1, -2, 3});
    CHECK(round_trip(std::vector<bool>{true, false, true}) == std::vector<bool>{true, false, true});
    CHECK(round_trip(std::vector<std::string>{"a", "", "ccc"}) == std::vector<std::string>{"a", "", "ccc"});
    CHECK(round_trip(std::map<std::string, int>{}).empty());
    CHECK(round_trip(std::map<std::string, int>{{"a", 1}, {"b", 2}}) == std::map<std::string, int>{{"a", 1}, {"b", 2}});
    CHECK(round_trip(std::map<int, std::vector<double>>{{3, {}}, {1, {0.5}}}) ==
          std::map<int, std::vector<double>>{{3, {}}, {1, {0.5}}});
    CHECK(round_trip(std::array<int, 3>{4, 5, 6}) == std::array<int, 3>{4, 5, 6});
    CHECK(round_trip(std::array<std::string, 2>{"x", "yy"}) == std::array<std::string, 2>{"x", "yy"});
    CHECK(round_trip(std::optional<int>{}) == std::nullopt);
    CHECK(round_trip(std::optional<int>{7}) == 7);
    CHECK(round_trip(std::optional<std::string>{""}) == std::optional<std::string>{""});
    CHECK(round_trip(std::optional<std::vector<int>>{}) == std::nullopt);
}

TEST_CASE("codec: tuples and pairs come back element by element") {
    CHECK(round_trip(std::tuple<>{}) == std::tuple<>{});
    CHECK(round_trip(std::tuple<int, double>{1, 2.5}) == std::tuple<int, double>{1, 2.5});
    CHECK(round_trip(std::tuple<char, std::int64_t, float>{'q', -9, 0.25f}) ==
          std::tuple<char, std::int64_t, float>{'q', -9, 0.25f});
    CHECK(round_trip(std::tuple<bool, int>{true, 3}) == std::tuple<bool, int>{true, 3});
    CHECK(round_trip(std::tuple<std::string, std::vector<int>>{"s", {1}}) ==
          std::tuple<std::string, std::vector<int>>{"s", {1}});
    CHECK(round_trip(std::pair<int, std::string>{5, "five"}) == std::pair<int, std::string>{5, "five"});
}

TEST_CASE("codec: deeply nested standard types come back") {
    using Deep = std::vector<std::map<std::string, std::optional<std::pair<int, double>>>>;
    const Deep deep{{}, {{"a", std::nullopt}, {"b", std::pair{1, 2.5}}}, {{"", std::pair{-3, 0.0}}}};
    CHECK(round_trip(deep) == deep);
    using Deeper = std::optional<std::tuple<std::vector<std::vector<std::string>>, std::map<int, std::array<bool, 2>>>>;
    const Deeper deeper{std::tuple{std::vector<std::vector<std::string>>{{"x"}, {}}, std::map<int, std::array<bool, 2>>{
                                                                                           {1, {true, false}}}}};
    CHECK(round_trip(deeper) == deeper);
}

TEST_CASE("codec: user types cross through a serialize member, a free serialize, or a private one") {
    const Point p{1.5, -2, "p", {std::nullopt, 4}};
    CHECK(round_trip(p) == p);
    const geo::Box box{p, Point{3, 4, "", {}}, {{"k", {1, 0.5}}}};
    CHECK(round_trip(box) == box);
    CHECK(round_trip(Secret{17}).value() == 17);
    const std::vector<Point> points{p, Point{}, p};
    CHECK(round_trip(points) == points);
    const std::map<std::string, std::optional<geo::Box>> boxes{{"none", std::nullopt}, {"one", box}};
    CHECK(round_trip(boxes) == boxes);
}

TEST_CASE("codec: is_codable accepts values and refuses what cannot cross") {
    static_assert(at::is_codable_v<int>);
    static_assert(at::is_codable_v<const std::string&>);
    static_assert(at::is_codable_v<std::vector<std::map<std::string, std::optional<std::pair<int, double>>>>>);
    static_assert(at::is_codable_v<Point>);
    static_assert(at::is_codable_v<geo::Box>);
    static_assert(at::is_codable_v<Secret>);
    static_assert(at::is_codable_v<int[4]>);
    static_assert(!at::is_codable_v<int*>);
    static_assert(!at::is_codable_v<const char*>);
    static_assert(!at::is_codable_v<NoSerialize>);
    static_assert(!at::is_codable_v<const NoSerialize&>);
    static_assert(!at::is_codable_v<std::function<int()>>);
    static_assert(!at::is_codable_v<std::vector<int*>>);
    static_assert(!at::is_codable_v<std::map<std::string, NoSerialize>>);
    static_assert(!at::is_codable_v<std::tuple<int, void*>>);
    static_assert(!at::is_codable_v<NoSerialize[2]>);
    static_assert(!at::is_codable_v<int (*)(int)>);
    static_assert(!at::is_codable_v<std::nullptr_t>);
    static_assert(std::is_same_v<at::detail::uncodable_part_t<std::vector<std::optional<NoSerialize>>>, NoSerialize>);
    static_assert(std::is_same_v<at::detail::uncodable_part_t<std::tuple<int, std::map<int, char*>>>, char*>);
    CHECK(true);
}

TEST_CASE("codec: several values form one message that decodes as a tuple") {
    Slot slot;
    at::encode(slot.writer, 7, std::string("seven"), 7.5);
    ByteReader in = slot.reader();
    using Args = std::tuple<int, std::string, double>;
    CHECK(at::decode<Args>(in) == Args{7, "seven", 7.5});
    CHECK(in.remaining() == 0);

    Slot same;
    at::encode(same.writer, Args{7, "seven", 7.5});
    CHECK(same.writer.size() == slot.writer.size());
    CHECK(std::memcmp(same.bytes.data(), slot.bytes.data(), slot.writer.size()) == 0);
}

TEST_CASE("codec: a void result is an empty message") {
    Slot slot;
    at::encode(slot.writer);
    CHECK(slot.writer.size() == sizeof(std::uint64_t));
    ByteReader in = slot.reader();
    at::decode<void>(in);
    CHECK(in.remaining() == 0);
}

TEST_CASE("codec: messages follow one another in a slot") {
    Slot slot;
    at::encode(slot.writer, 1);
    at::encode(slot.writer, std::string("two"));
    ByteReader in = slot.reader();
    CHECK(at::decode<int>(in) == 1);
    CHECK(at::decode<std::string>(in) == "two");
    CHECK(in.remaining() == 0);
}

TEST_CASE("codec: a value too large for the slot throws SlotOverflow saying how to raise the limit") {
    Slot slot(64);
    const std::string big(100, 'b');
    try {
        at::encode(slot.writer, big);
        FAIL("encode did not throw");
    } catch (const SlotOverflow& e) {
        // 8-byte message header + 8-byte length + 100 characters.
        CHECK(std::string(e.what()) ==
              "a value of at least 116 bytes does not fit the 64-byte shared-memory slot; "
              "raise InitOptions::slot_size in at::init()");
        CHECK(e.needed() == 116);
    }
    CHECK_THROWS_AS(at::encode(slot.writer, big), at::Error);  // SlotOverflow is an at::Error
}

TEST_CASE("codec: a user type too large for the slot throws SlotOverflow too") {
    Slot slot(48);
    const Point p{1, 2, std::string(100, 'p'), {}};
    CHECK_THROWS_AS(at::encode(slot.writer, p), SlotOverflow);
}

TEST_CASE("codec: a measuring writer counts the bytes a message needs and keeps none") {
    const Point p{1, 2, std::string(100, 'p'), {3, std::nullopt, 4}};
    const std::vector<std::map<std::string, int>> m{{{"a", 1}}, {{"bb", 2}, {"ccc", 3}}};
    Slot slot;
    ByteWriter measure = ByteWriter::measuring();
    at::encode(slot.writer, p, m);
    at::encode(measure, p, m);
    CHECK(measure.measures());
    CHECK(measure.data() == nullptr);
    CHECK(measure.size() == slot.writer.size());
}

namespace {
// A spill into memory of its own, as the worker's into a segment.
struct HeapSpill final : at::detail::ValueSpill {
    std::vector<std::byte> bytes;
    int made = 0;
    ByteWriter writer(std::size_t size) override {
        ++made;
        bytes.resize(size);
        return {bytes.data(), bytes.size()};
    }
};
}  // namespace

TEST_CASE("codec: a message too large for a writer with a spill is written whole into the spill's memory") {
    std::vector<std::byte> small(64);
    HeapSpill spill;
    ByteWriter fits(small.data(), small.size(), at::detail::Overflow::measure, &spill);
    at::detail::encode_spilling(fits, 7);
    CHECK(spill.made == 0);  // a value that fits stays in the slot
    ByteReader in(small.data(), fits.size());
    CHECK(at::decode<int>(in) == 7);

    const std::vector<int> big(1000, 9);
    ByteWriter overflows(small.data(), small.size(), at::detail::Overflow::measure, &spill);
    at::detail::encode_spilling(overflows, big);
    CHECK(spill.made == 1);
    CHECK(spill.bytes.size() == 8 + 8 + 4000);  // exactly the message: header, count, elements
    ByteReader whole(spill.bytes.data(), spill.bytes.size());
    CHECK(at::decode<std::vector<int>>(whole) == big);
    CHECK(overflows.overflowed());
    CHECK(overflows.size() == spill.bytes.size());  // it measured the message
    // Without a spill, or refusing overflows, the overflow stands.
    ByteWriter refuses(small.data(), small.size());
    CHECK_THROWS_AS(at::detail::encode_spilling(refuses, big), SlotOverflow);
    ByteWriter no_spill(small.data(), small.size(), at::detail::Overflow::measure);
    CHECK_THROWS_AS(at::detail::encode_spilling(no_spill, big), SlotOverflow);
}

TEST_CASE("codec: an overflowed message is never mistaken for a value") {
    Slot slot(64);
    at::encode(slot.writer, 5);
    const std::size_t good = slot.writer.size();
    CHECK_THROWS_AS(at::encode(slot.writer, std::vector<int>(1000, 1)), SlotOverflow);
    CHECK(slot.writer.size() > good);  // the header and the count were written before the elements overflowed

    ByteReader in = slot.reader();
    CHECK(at::decode<int>(in) == 5);
    CHECK_THROWS_WITH_AS(at::decode<std::vector<int>>(in),
                         "corrupt shared-memory message: the value was never completely written (encoding it threw); "
                         "do not read a message whose encoding failed",
                         at::Error);
}

TEST_CASE("codec: truncated input throws at::Error at every cut") {
    Slot slot;
    const std::map<std::string, std::vector<Point>> value{{"a", {Point{1, 2, "x", {3}}}}, {"b", {}}};
    at::encode(slot.writer, value);
    for (std::size_t cut = 0; cut < slot.writer.size(); ++cut) {
        ByteReader in(slot.bytes.data(), cut);
        CAPTURE(cut);
        CHECK_THROWS_AS((at::decode<std::map<std::string, std::vector<Point>>>(in)), at::Error);
    }
}

TEST_CASE("codec: reading a different type than was written throws at::Error") {
    Slot slot;
    at::encode(slot.writer, 1, 2);
    ByteReader in = slot.reader();
    CHECK_THROWS_WITH_AS(at::decode<int>(in),
                         "corrupt shared-memory message: the value does not end where its header says; encode and "
                         "decode the same type",
                         at::Error);
}

TEST_CASE("codec: a corrupt length or flag throws at::Error instead of allocating or misreading") {
    SUBCASE("a huge string length") {
        Slot slot;
        at::encode(slot.writer, std::string("abc"));
        const std::uint64_t huge = std::uint64_t{1} << 60;
        std::memcpy(slot.bytes.data() + 8, &huge, sizeof(huge));
        ByteReader in = slot.reader();
        CHECK_THROWS_WITH_AS(at::decode<std::string>(in),
                             "corrupt shared-memory message: element count 1152921504606846976 with 3 bytes left; "
                             "encode and decode the same type",
                             at::Error);
    }
    SUBCASE("a huge vector length inside a user type") {
        Slot slot;
        at::encode(slot.writer, Point{1, 2, "", {5}});
        // header(8) x(8) y(8) label size(8) -> tags size at offset 32
        const std::uint64_t huge = std::uint64_t{1} << 62;
        std::memcpy(slot.bytes.data() + 32, &huge, sizeof(huge));
        ByteReader in = slot.reader();
        CHECK_THROWS_WITH_AS(at::decode<Point>(in),
                             "corrupt shared-memory message: a container of 4611686018427387904 elements in a 5-byte "
                             "remainder; encode and decode the same type",
                             at::Error);
    }
    SUBCASE("an optional flag that is neither 0 nor 1") {
        Slot slot;
        at::encode(slot.writer, std::optional<int>{3});
        slot.bytes[8] = std::byte{7};
        ByteReader in = slot.reader();
        CHECK_THROWS_AS(at::decode<std::optional<int>>(in), at::Error);
    }
    SUBCASE("a header longer than the input") {
        Slot slot;
        at::encode(slot.writer, 9);
        ByteReader in(slot.bytes.data(), slot.writer.size() - 1);
        CHECK_THROWS_AS(at::decode<int>(in), at::Error);
    }
    SUBCASE("repeated map keys") {
        Slot slot;
        at::encode(slot.writer, std::map<int, int>{{1, 10}, {2, 20}});
        // header(8) count(8) key(4) value(4) key(4): make the second key equal the first
        const int one = 1;
        std::memcpy(slot.bytes.data() + 24, &one, sizeof(one));
        ByteReader in = slot.reader();
        CHECK_THROWS_AS((at::decode<std::map<int, int>>(in)), at::Error);
    }
}

TEST_CASE("codec: random garbage never decodes into a crash") {
    std::uint64_t state = 0x9e3779b97f4a7c15ULL;
    std::vector<std::byte> junk(256);
    int decoded = 0;
    for (int round = 0; round < 2000; ++round) {
        for (auto& b : junk) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b = static_cast<std::byte>(state);
        }
        // A plausible header, so decoding goes past it into the garbage.
        const std::uint64_t length = state % (junk.size() - 8);
        std::memcpy(junk.data(), &length, sizeof(length));
        ByteReader in(junk.data(), junk.size());
        try {
            (void)at::decode<std::vector<std::map<std::string, std::optional<std::pair<int, double>>>>>(in);
            ++decoded;
        } catch (const at::Error&) {
        }
    }
    CHECK(decoded < 2000);
}

TEST_CASE("codec: a huge count of elements that encode to nothing throws instead of allocating") {
    constexpr std::uint64_t huge = std::uint64_t{1} << 40;
    const std::string message = "corrupt shared-memory message: element count 1099511627776 with 0 bytes left; "
                                "encode and decode the same type";
    SUBCASE("std::vector<std::tuple<>>") {
        Slot slot = with_count<std::vector<std::tuple<>>>(huge);
        ByteReader in = slot.reader();
        CHECK_THROWS_WITH_AS(at::decode<std::vector<std::tuple<>>>(in), message.c_str(), at::Error);
    }
    SUBCASE("std::vector<std::array<int, 0>>") {
        Slot slot = with_count<std::vector<std::array<int, 0>>>(huge);
        ByteReader in = slot.reader();
        CHECK_THROWS_WITH_AS((at::decode<std::vector<std::array<int, 0>>>(in)), message.c_str(), at::Error);
    }
    SUBCASE("a vector of a user type that writes nothing") {
        Slot slot = with_count<std::vector<Nothing>>(huge);
        ByteReader in = slot.reader();
        CHECK_THROWS_WITH_AS(at::decode<std::vector<Nothing>>(in), message.c_str(), at::Error);
    }
    SUBCASE("such a vector inside a user type") {
        Slot slot = with_count<Nothings>(huge);
        ByteReader in = slot.reader();
        CHECK_THROWS_WITH_AS(at::decode<Nothings>(in),
                             "corrupt shared-memory message: a container of 1099511627776 elements in a 0-byte "
                             "remainder; encode and decode the same type",
                             at::Error);
    }
}

TEST_CASE("codec: up to 65536 elements that encode to nothing cross; more are refused when encoding") {
    const std::vector<std::tuple<>> most(at::detail::max_unbacked_elements);
    CHECK(round_trip(most).size() == most.size());
    CHECK(round_trip(std::vector<Nothing>(1000)) == std::vector<Nothing>(1000));
    CHECK(round_trip(std::vector<std::array<int, 0>>(3)).size() == 3);
    Slot slot;
    CHECK_THROWS_WITH_AS(at::encode(slot.writer, std::vector<std::tuple<>>(most.size() + 1)),
                         "cannot send a container of 65537 elements that encode to 0 bytes: at most 65536 elements "
                         "more than bytes can cross; send the count instead of empty elements",
                         at::Error);
}
