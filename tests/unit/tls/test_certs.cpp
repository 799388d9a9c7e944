#include "test_certs.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace preforkd::tls::test {

namespace {

std::string base_dir;

void run(const std::string& command) {
    std::string full = "cd '" + base_dir + "' && " + command + " >>openssl.log 2>&1";
    if (std::system(full.c_str()) != 0) {
        std::fprintf(stderr, "test_certs: failed: %s (see %s/openssl.log)\n", command.c_str(),
                     base_dir.c_str());
        std::abort();
    }
}

void remove_dir() {
    if (!base_dir.empty()) std::filesystem::remove_all(base_dir);
}

// A CSR and key: EC P-256 or RSA 2048.
void key_and_csr(const std::string& name, const std::string& cn, bool rsa) {
    std::string alg = rsa ? "-newkey rsa:2048" : "-newkey ec -pkeyopt ec_paramgen_curve:P-256";
    run("openssl req -new " + alg + " -nodes -keyout " + name + ".key -out " + name +
        ".csr -subj /CN=" + cn);
}

void sign(const std::string& name, const std::string& issuer, const std::string& ext, int days) {
    run("openssl x509 -req -in " + name + ".csr -CA " + issuer + ".pem -CAkey " + issuer +
        ".key -CAcreateserial -out " + name + ".pem -days " + std::to_string(days) +
        " -sha256 -extfile ext.cnf -extensions " + ext);
}

test_certs make() {
    char tmpl[] = "/tmp/preforkd-tls-test-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    base_dir = tmpl;
    std::atexit(remove_dir);
    {
        std::ofstream ext(base_dir + "/ext.cnf");
        ext << "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
               "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
               "[ecdsa]\nsubjectAltName=DNS:example.org,DNS:www.example.org\n"
               "extendedKeyUsage=serverAuth\n"
               "[rsa]\nsubjectAltName=DNS:other.net,DNS:*.other.net\nextendedKeyUsage=serverAuth\n"
               "[old]\nsubjectAltName=DNS:old.example\n"
               "[soon]\nsubjectAltName=DNS:soon.example\n";
        std::ofstream ca(base_dir + "/ca.cnf");
        ca << "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n"
              "default_md=sha256\npolicy=p\ncopy_extensions=copy\n[p]\ncommonName=supplied\n"
              "[old]\nsubjectAltName=DNS:old.example\n";
        std::ofstream(base_dir + "/index.txt").close();
        std::ofstream(base_dir + "/serial") << "1000\n";
    }
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
        "-out ca.pem -days 30 -subj /CN=preforkd-test-ca "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign");
    key_and_csr("inter", "preforkd-test-intermediate", false);
    sign("inter", "ca", "ca", 30);
    key_and_csr("ecdsa", "example.org", false);
    sign("ecdsa", "inter", "ecdsa", 30);
    run("cat ecdsa.pem inter.pem > ecdsa_chain.pem && cat inter.pem ecdsa.pem > wrong_order.pem");
    key_and_csr("rsa", "other.net", true);
    sign("rsa", "ca", "rsa", 30);
    key_and_csr("soon", "soon.example", false);
    sign("soon", "ca", "soon", 5);
    key_and_csr("old", "old.example", false);
    // `openssl x509` cannot date a certificate in the past; `openssl ca` can.
    run("openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in old.csr -out "
        "old.pem -startdate 20200101000000Z -enddate 20200201000000Z -notext -extensions old "
        "-extfile ext.cnf");
    const std::string& d = base_dir;
    return test_certs{d,
                      d + "/ca.pem",
                      d + "/ecdsa_chain.pem",
                      d + "/ecdsa.key",
                      d + "/rsa.pem",
                      d + "/rsa.key",
                      d + "/old.pem",
                      d + "/old.key",
                      d + "/soon.pem",
                      d + "/soon.key",
                      d + "/wrong_order.pem",
                      d + "/inter.pem"};
}

}  // namespace

const test_certs& certs() {
    static const test_certs made = make();
    return made;
}

std::string write_file(const std::string& name, const std::string& text) {
    std::string path = certs().dir + "/" + name;
    std::ofstream(path) << text;
    return path;
}

}  // namespace preforkd::tls::test
