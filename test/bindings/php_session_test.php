<?php
// The shmsession save handler in real php8.2 processes (CLI; the requests
// of several workers are forked processes, each with its own handler):
// concurrency on one session, read_and_close beside locked requests, strict
// mode, regenerate, destroy, gc, lazy_write, lock timeout and a holder
// killed mid-request. Run by CTest (test/bindings/CMakeLists.txt):
//   php8.2 -n -d extension=shmsession.so php_session_test.php SHMCTL STORE_PREFIX
// Exit status 0 when every check held; each failed check prints a line.

declare(strict_types=1);

[$script, $shmctl, $prefix] = $argv + [null, null, null];
$store = $prefix === null ? null : $prefix . getmypid();  // unique to this run
if ($shmctl === null || $store === null) {
    fwrite(STDERR, "usage: php_session_test.php SHMCTL STORE_PREFIX\n");
    exit(2);
}
$failures = 0;
$parent = getmypid();
register_shutdown_function(function () use ($shmctl, $store, $parent) {
    if (getmypid() === $parent) {
        // --force: this process still has the store mapped.
        exec(escapeshellarg($shmctl) . ' destroy --force ' . escapeshellarg($store) . ' 2>/dev/null');
    }
});

ini_set('session.save_handler', 'shmsession');
ini_set('session.serialize_handler', 'shmsession');
ini_set('session.save_path', $store);
ini_set('session.use_cookies', '0');
ini_set('session.use_only_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('shmsession.store_size_mb', '32');
ini_set('shmsession.lock_wait_ms', '20000');
// No garbage collection at session_start() unless a check asks for it: PHP
// runs it there with probability gc_probability/gc_divisor (1/100 by
// default), which would free the gc check's session before session_gc()
// could count it.
ini_set('session.gc_probability', '0');

function check(bool $ok, string $what): void {
    global $failures;
    // Straight to the descriptor: output through PHP's output layer would
    // count as sent headers, after which session settings cannot change.
    fwrite(STDOUT, ($ok ? 'ok   ' : 'FAIL ') . $what . "\n");
    if (!$ok) $failures++;
}

function new_id(): string { return bin2hex(random_bytes(16)); }

// The store's view of a session (shmctl show --json), or null if absent.
function shown(string $id): ?array {
    global $shmctl, $store;
    $out = [];
    exec(escapeshellarg($shmctl) . ' show --json ' . escapeshellarg($store) . ' ' . escapeshellarg($id) . ' 2>/dev/null', $out, $rc);
    return $rc === 0 ? json_decode(implode("\n", $out), true) : null;
}

// One request on session $id: starts it, runs $body, writes it back.
function request(string $id, callable $body, array $options = []): bool {
    session_id($id);
    if (!session_start($options)) return false;
    $body();
    if (session_status() === PHP_SESSION_ACTIVE) session_write_close();
    return true;
}

// Forks $n workers running $body($worker); returns how many exited 0.
function workers(int $n, callable $body): int {
    $pids = [];
    for ($w = 0; $w < $n; $w++) {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $code = 1;
            try { $code = $body($w) ? 0 : 1; } catch (Throwable $e) { fwrite(STDERR, "$e\n"); }
            exit($code);
        }
        $pids[] = $pid;
    }
    $good = 0;
    foreach ($pids as $pid) {
        pcntl_waitpid($pid, $status);
        if (pcntl_wifexited($status) && pcntl_wexitstatus($status) === 0) $good++;
    }
    return $good;
}

// --- every PHP type round-trips, each key is one attribute --------------------
$id = new_id();
$object = new ArrayObject(['x' => 1]);
$graph = ['one' => $object, 'again' => $object];
$list = [1, 2];
$list[] = &$list[0];
request($id, function () use ($graph, $list) {
    $_SESSION['n'] = 1;
    $_SESSION['float'] = 1.5;
    $_SESSION['text'] = "line\nwith|bar and \0 nul";
    $_SESSION['graph'] = $graph;
    $_SESSION['refs'] = $list;
    $_SESSION["odd key\x01"] = true;
});
request($id, function () {
    check($_SESSION['n'] === 1 && $_SESSION['float'] === 1.5, 'scalars round-trip');
    check($_SESSION['text'] === "line\nwith|bar and \0 nul", 'binary strings round-trip');
    check($_SESSION['graph']['one'] === $_SESSION['graph']['again'], 'an object held twice in a key stays one object');
    $_SESSION['refs'][2] = 7;
    check($_SESSION['refs'][0] === 7, 'a reference within a key stays a reference');
    check($_SESSION["odd key\x01"] === true, 'a key of any bytes round-trips');
});
$view = shown($id);
$names = array_column($view['attributes'] ?? [], 'name');
check(in_array('n', $names, true) && in_array('graph', $names, true), 'shmctl show lists the keys as attributes');

// --- a write commits only the keys that changed, removes the unset ones -------
$before = array_column(shown($id)['attributes'], 'version', 'name');
request($id, function () { $_SESSION['n']++; unset($_SESSION['float']); });
$after = array_column(shown($id)['attributes'], 'version', 'name');
check($after['n'] > $before['n'], 'the changed key is written');
check($after['text'] === $before['text'] && $after['graph'] === $before['graph'], 'unchanged keys are not written');
check(!isset($after['float']), 'an unset key is removed');

// --- 200 requests, 8 at a time, on one session --------------------------------
$id = new_id();
request($id, function () { $_SESSION['n'] = 0; });
$good = workers(8, function (int $w) use ($id) {
    for ($i = 0; $i < 25; $i++) {
        if (!request($id, function () { $_SESSION['n']++; })) return false;
    }
    return true;
});
check($good === 8, '8 workers ran 25 requests each');
request($id, function () { check($_SESSION['n'] === 200, "200 increments from 8 processes: n = {$_SESSION['n']}"); });

// --- locked requests on one key, read_and_close requests on another -----------
$id = new_id();
request($id, function () { $_SESSION['a'] = 0; $_SESSION['b'] = 0; });
$good = workers(8, function (int $w) use ($id) {
    for ($i = 0; $i < 20; $i++) {
        if ($w % 2 === 0) {
            if (!request($id, function () { $_SESSION['a']++; })) return false;
        } else {
            // Reads without keeping the lock while it works, then takes the
            // session again to change its own key.
            session_id($id);
            if (!session_start(['read_and_close' => true])) return false;
            $seen = $_SESSION['b'];
            if (!request($id, function () { $_SESSION['b']++; })) return false;
            if ($seen < 0) return false;
        }
    }
    return true;
});
check($good === 8, 'locked and read_and_close workers all ran');
request($id, function () {
    check($_SESSION['a'] === 80 && $_SESSION['b'] === 80, "no update of either key lost: a = {$_SESSION['a']}, b = {$_SESSION['b']}");
});

// --- strict mode refuses a made-up id -----------------------------------------
ini_set('session.use_strict_mode', '1');
$madeUp = new_id();
session_id($madeUp);
session_start();
$given = session_id();
$_SESSION['x'] = 1;
session_write_close();
check($given !== $madeUp, 'strict mode gives a new id instead of a made-up one');
check(shown($madeUp) === null && shown($given) !== null, 'the made-up id never becomes a session');
$known = $given;
session_id($known);
session_start();
check(session_id() === $known && $_SESSION['x'] === 1, 'strict mode keeps an id that exists');
session_write_close();
ini_set('session.use_strict_mode', '0');

// --- session_regenerate_id(true) moves the data --------------------------------
$old = new_id();
request($old, function () { $_SESSION['cart'] = ['sku' => 3]; });
session_id($old);
session_start();
session_regenerate_id(true);
$new = session_id();
session_write_close();
check($new !== $old && shown($old) === null, 'regenerate_id(true) removes the old session');
request($new, function () { check(($_SESSION['cart']['sku'] ?? null) === 3, 'regenerate_id(true) moves the data'); });

// --- session_destroy() removes it ----------------------------------------------
$id = new_id();
request($id, function () { $_SESSION['x'] = 1; });
session_id($id);
session_start();
session_destroy();
check(shown($id) === null, 'session_destroy() removes the session');

// --- lazy_write touches only ----------------------------------------------------
$id = new_id();
request($id, function () { $_SESSION['x'] = 1; });
$first = shown($id);
// (+5: shmctl shows the store's boot-time clock converted to wall time as it
// reads it, which moves a shown time by a millisecond or two.)
do { usleep(2000); } while ((int)(microtime(true) * 1000) <= $first['last_access_unix_ms'] + 5);
request($id, function () { $x = $_SESSION['x']; });
$second = shown($id);
check($second['version'] === $first['version'], 'lazy_write: an unchanged session is not written');
check($second['last_access_unix_ms'] > $first['last_access_unix_ms'], 'lazy_write: its last access moves');

// --- gc frees expired sessions --------------------------------------------------
// A session whose idle timeout (gc_maxlifetime when it was written) is 1 s.
function expiring_session(): string {
    $old = ini_get('session.gc_maxlifetime');
    ini_set('session.gc_maxlifetime', '1');
    $id = new_id();
    request($id, function () { $_SESSION['x'] = 1; });
    ini_set('session.gc_maxlifetime', $old);
    return $id;
}
$expiring = expiring_session();
$freed = 0;
$until = microtime(true) + 30;  // fails instead of hanging
$probe = new_id();
while ($freed < 1 && microtime(true) < $until) {
    usleep(100000);
    session_id($probe);
    session_start();
    $freed += (int)session_gc();
    session_write_close();
}
check($freed >= 1 && shown($expiring) === null, "session_gc() frees the expired session (freed $freed)");
// PHP's own collection at session_start() (here on every start) calls the
// same handler.
$expiring = expiring_session();
ini_set('session.gc_probability', '1');
ini_set('session.gc_divisor', '1');
$until = microtime(true) + 30;
while (shown($expiring) !== null && microtime(true) < $until) {
    usleep(100000);
    request($probe, function () {});
}
ini_set('session.gc_probability', '0');
check(shown($expiring) === null, 'gc at session_start() (gc_probability/gc_divisor) frees the expired session');

// --- a lock not granted in time: a warning, session_start() false, no lost write
$id = new_id();
request($id, function () { $_SESSION['n'] = 0; });
// One byte through a socket pair: how the holder and this process take turns.
[$toParent, $fromHolder] = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
[$toHolder, $fromParent] = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
$holder = pcntl_fork();
if ($holder === 0) {
    session_id($id);
    session_start();
    fwrite($toParent, "1");               // holds the lock now
    fread($fromParent, 1);                // until the parent has timed out
    $_SESSION['n']++;
    session_write_close();
    exit(0);
}
fread($fromHolder, 1);
ini_set('shmsession.lock_wait_ms', '300');
$warnings = [];
set_error_handler(function (int $no, string $message) use (&$warnings) { $warnings[] = $message; return true; });
session_id($id);
$started = session_start();
restore_error_handler();
ini_set('shmsession.lock_wait_ms', '20000');
check($started === false, 'session_start() returns false when the lock is not granted in time');
check(count(array_filter($warnings, fn ($m) => str_contains($m, 'stays locked'))) === 1, 'and a warning says so: ' . ($warnings[0] ?? 'none'));
fwrite($toHolder, "1");
pcntl_waitpid($holder, $status);
request($id, function () { check($_SESSION['n'] === 1, "the holder's write stands: n = {$_SESSION['n']}"); });

// --- a holder killed mid-request ----------------------------------------------------
$id = new_id();
request($id, function () { $_SESSION['n'] = 5; });
$holder = pcntl_fork();
if ($holder === 0) {
    session_id($id);
    session_start();
    $_SESSION['n'] = 99;                  // never written: the process dies
    fwrite($toParent, "1");
    while (true) sleep(1);
}
fread($fromHolder, 1);
exec('kill -KILL ' . (int)$holder);
pcntl_waitpid($holder, $status);
ini_set('shmsession.lock_wait_ms', '10000');  // fails instead of hanging; the store's bound is 100 ms
$served = request($id, function () { check($_SESSION['n'] === 5, 'the killed holder wrote nothing'); });
check($served, 'the next request on it is served');

// --- a missing store is named when it may not be created ----------------------------
ini_set('shmsession.auto_create', '0');
ini_set('session.save_path', $store . '_missing');
$warnings = [];
set_error_handler(function (int $no, string $message) use (&$warnings) { $warnings[] = $message; return true; });
session_id(new_id());
$started = session_start();
restore_error_handler();
check($started === false && count(array_filter($warnings, fn ($m) => str_contains($m, $GLOBALS['store'] . '_missing'))) >= 1,
      'auto_create=0: the missing store is named');

fwrite(STDOUT, $failures === 0 ? "all checks held\n" : "$failures checks failed\n");
exit($failures === 0 ? 0 : 1);
