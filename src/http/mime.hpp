// Content-Type by file extension, from /etc/mime.types.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

namespace preforkd::http {

inline constexpr std::string_view default_mime_type = "application/octet-stream";

class mime_table {
  public:
    // A small table of the types a web site needs, for systems without /etc/mime.types.
    static mime_table builtin();
    // The mime.types format: "type/subtype ext ext ...", '#' comments. The first type
    // named for an extension wins.
    static mime_table parse(std::string_view text);
    // Reads `path` once; a missing or unreadable file gives the built-in table.
    static mime_table load(const char* path = "/etc/mime.types");

    // The type for `file_name`'s extension (case-insensitive), or application/octet-stream.
    std::string_view lookup(std::string_view file_name) const noexcept;
    // Appends "; charset=<charset>" to every text type of the table that has no parameter
    // yet (http.charset), once at load: lookups stay as cheap. "" changes nothing.
    void set_charset(std::string_view charset);
    // Whether the bytes of `type` are text: text/*, application/javascript, application/json,
    // application/xml, image/svg+xml and any other +xml or +json type.
    static bool is_text_type(std::string_view type) noexcept;
    size_t size() const noexcept { return by_ext_.size(); }

  private:
    void add(std::string_view type, std::string_view ext);
    std::unordered_map<std::string, std::string> by_ext_;
};

}  // namespace preforkd::http
