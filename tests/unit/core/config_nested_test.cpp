// table_reader's nested tables and app_tables::array: [[x]] arrays, inline tables, arrays
// of inline tables, with `file:line: x[N].key` errors and unknown keys found at every depth.
#include <gtest/gtest.h>

#include <preforkd/config.hpp>

using namespace preforkd;

namespace {

struct item {
    std::string name;
    std::vector<std::string> keys;     // of its `pages` table
    std::vector<std::string> matches;  // of its `rules` array
};

// [[item]] tables with `name`, `pages = { ... }` (keys are data) and `rules = [ {match} ]`.
app_schema item_schema(std::vector<item>* out) {
    app_schema s;
    s.arrays = {"item"};
    s.parse = [out](app_tables& tables) -> result<std::shared_ptr<const void>> {
        for (table_reader* t : tables.array("item")) {
            item it;
            it.name = t->string("name", "");
            if (table_reader* pages = t->sub_table("pages")) {
                for (const std::string& k : pages->keys()) {
                    it.keys.push_back(k);
                    std::string v = pages->string(k, "");
                    if (v.empty() || v[0] != '/') pages->fail(k, "must start with \"/\"");
                }
            }
            for (table_reader* r : t->table_array("rules"))
                it.matches.push_back(r->string("match", ""));
            if (auto done = t->finish(); !done) return std::move(done).err();
            out->push_back(std::move(it));
        }
        return std::shared_ptr<const void>(std::make_shared<int>(0));
    };
    return s;
}

result<config> load(const std::string& text, std::vector<item>& out) {
    return parse_config(text, "/srv/x.toml", item_schema(&out));
}

}  // namespace

TEST(config_nested, reads_arrays_of_tables_inline_tables_and_arrays_of_tables) {
    std::vector<item> items;
    auto cfg = load(
        "[[item]]\nname = \"a\"\npages = { 404 = \"/404.html\", 500 = \"/500.html\" }\n"
        "rules = [ { match = \"/x/*\" }, { match = \"/y\" } ]\n"
        "[[item]]\nname = \"b\"\n[item.pages]\n410 = \"/gone.html\"\n",
        items);
    ASSERT_TRUE(cfg.ok()) << cfg.err().message;
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].name, "a");
    EXPECT_EQ(items[0].keys, (std::vector<std::string>{"404", "500"}));
    EXPECT_EQ(items[0].matches, (std::vector<std::string>{"/x/*", "/y"}));
    EXPECT_EQ(items[1].keys, std::vector<std::string>{"410"});
    EXPECT_TRUE(items[1].matches.empty());
}

TEST(config_nested, errors_name_the_item_and_its_line) {
    std::vector<item> items;
    auto cfg =
        load("[[item]]\nname = \"a\"\n[[item]]\nname = \"b\"\npages = { 404 = \"x\" }\n", items);
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.err().message, "/srv/x.toml:5: item[1].pages.404 must start with \"/\"");
}

TEST(config_nested, unknown_keys_are_found_at_every_depth) {
    std::vector<item> items;
    auto deep =
        load("[[item]]\nrules = [ { match = \"/a\" },\n { match = \"/b\", mach = 1 } ]\n", items);
    ASSERT_FALSE(deep.ok());
    EXPECT_EQ(deep.err().message, "/srv/x.toml:3: unknown key item[0].rules[1].mach");
    auto top = load("[[item]]\nname = \"a\"\n[[item]]\nnme = \"b\"\n", items);
    ASSERT_FALSE(top.ok());
    EXPECT_EQ(top.err().message, "/srv/x.toml:4: unknown key item[1].nme");
}

TEST(config_nested, wrong_shapes_are_errors) {
    std::vector<item> items;
    auto not_table = load("[[item]]\npages = 4\n", items);
    ASSERT_FALSE(not_table.ok());
    EXPECT_EQ(not_table.err().message,
              "/srv/x.toml:2: item[0].pages must be a table, not an integer");
    auto not_array = load("[[item]]\nrules = { match = \"/a\" }\n", items);
    ASSERT_FALSE(not_array.ok());
    EXPECT_EQ(not_array.err().message,
              "/srv/x.toml:2: item[0].rules must be an array of tables, not a table");
    auto not_aot = load("[item]\nname = \"a\"\n", items);
    ASSERT_FALSE(not_aot.ok());
    EXPECT_EQ(not_aot.err().message,
              "/srv/x.toml:1: item must be an array of tables ([[item]]), not a table");
}

TEST(config_nested, no_array_is_no_items) {
    std::vector<item> items;
    auto cfg = load("", items);
    ASSERT_TRUE(cfg.ok()) << cfg.err().message;
    EXPECT_TRUE(items.empty());
}
