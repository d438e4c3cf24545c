// The configuration files of a PHP site as this repository runs one for a
// test or a benchmark: nginx passing one page to a php-fpm pool, both
// started in the foreground by the caller, with every file they write
// (pid, logs, temporary bodies) under the run's private directory.
//
// Thread safety: free functions over values.
#pragma once

#include <unistd.h>

#include <string>
#include <vector>

namespace shmsession::tools {

struct FpmPool {
  std::string dir;                 // the run's directory: the error log goes there
  std::string name;                // names the log: <dir>/fpm-<name>.log
  std::string listen;              // "127.0.0.1:PORT" or a socket's path
  int workers = 4;                 // pm = static
  std::vector<std::string> lines;  // more pool lines: "php_value[session.save_handler] = files"
};

// php-fpm's configuration (for `php-fpm8.2 -y FILE -F`): the global section
// and one pool, "www".
inline std::string fpm_conf(const FpmPool& pool) {
  std::string conf;
  conf += "[global]\n";
  conf += "error_log = " + pool.dir + "/fpm-" + pool.name + ".log\n";
  conf += "daemonize = no\n";
  conf += "[www]\n";
  conf += "listen = " + pool.listen + "\n";
  conf += "pm = static\n";
  conf += "pm.max_children = " + std::to_string(pool.workers) + "\n";
  conf += "catch_workers_output = yes\n";
  for (const std::string& line : pool.lines) conf += line + "\n";
  return conf;
}

struct NginxSite {
  std::string dir;                  // the run's directory: pid, log and temporary files go there
  std::string name;                 // names the pid and log: <dir>/nginx-<name>.{pid,log}
  int port = 0;                     // listens on 127.0.0.1:port
  std::string root;                 // the pages' directory
  std::string page;                 // the one location passed to php-fpm: "/bench.php"
  std::string upstream;             // fastcgi_pass: "127.0.0.1:PORT" or "unix:PATH"
  std::vector<std::string> params;  // more fastcgi_param lines: "SHM_TEST_DIR /tmp/x"
};

// nginx's configuration (for `nginx -p DIR -c FILE`): in the foreground,
// one worker, as root when run as root (so it may read the run's private
// directory), and the page passed to php-fpm.
inline std::string nginx_conf(const NginxSite& site) {
  const std::string files = site.dir + "/nginx-" + site.name;
  std::string conf;
  if (::geteuid() == 0) conf += "user root;\n";
  conf += "worker_processes 1;\n";
  conf += "daemon off;\n";
  conf += "pid " + files + ".pid;\n";
  conf += "error_log " + files + ".log;\n";
  conf += "events { worker_connections 1024; }\n";
  conf += "http {\n";
  conf += "  access_log off;\n";
  for (const char* kind : {"client_body", "fastcgi", "proxy", "uwsgi", "scgi"})
    conf += std::string("  ") + kind + "_temp_path " + site.dir + "/" + kind + ";\n";
  conf += "  server {\n";
  conf += "    listen 127.0.0.1:" + std::to_string(site.port) + " backlog=1024;\n";
  conf += "    root " + site.root + ";\n";
  conf += "    location = " + site.page + " {\n";
  conf += "      fastcgi_pass " + site.upstream + ";\n";
  conf += "      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n";
  conf += "      fastcgi_param QUERY_STRING $query_string;\n";
  conf += "      fastcgi_param REQUEST_METHOD $request_method;\n";
  for (const std::string& param : site.params) conf += "      fastcgi_param " + param + ";\n";
  conf += "    }\n";
  conf += "  }\n";
  conf += "}\n";
  return conf;
}

}  // namespace shmsession::tools
