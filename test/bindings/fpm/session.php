<?php
// The page php_fpm_test drives through nginx and a php-fpm pool: one
// operation per request (?op=...), on the session of the request's cookie
// (the pool runs with session.use_strict_mode=1, so a request without a
// known cookie gets a new session and a Set-Cookie). Replies are one JSON
// object; a session_start() that failed gives status 503 and its warnings.
// $_SERVER['SHM_TEST_DIR'] (set by nginx's configuration) is the test's
// private directory: where a holding request leaves its pid and waits.

declare(strict_types=1);

$warnings = [];
set_error_handler(function (int $no, string $message) use (&$warnings) {
    $warnings[] = $message;
    return true;
});

function reply(array $doc, int $status = 200): void {
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($doc), "\n";
}

function start(array $options = []): bool {
    global $warnings;
    if (session_start($options)) return true;
    reply(['started' => false, 'warnings' => $warnings], 503);
    return false;
}

// Writes this worker's pid where the test waits for it, then blocks until
// the test opens the fifo `name` for writing (or kills this worker).
function hold(string $name): void {
    $dir = $_SERVER['SHM_TEST_DIR'];
    file_put_contents("$dir/$name.pid.tmp", (string)getmypid());
    rename("$dir/$name.pid.tmp", "$dir/$name.pid");
    $fifo = fopen("$dir/$name.fifo", 'r');
    if ($fifo !== false) fclose($fifo);
}

$op = $_GET['op'] ?? '';
switch ($op) {
    case 'incr':  // the locked read-modify-write of one key
        if (!start()) break;
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        reply(['id' => session_id(), 'n' => $_SESSION['n']]);
        break;
    case 'a':  // locked: changes key a
        if (!start()) break;
        $_SESSION['a'] = ($_SESSION['a'] ?? 0) + 1;
        reply(['a' => $_SESSION['a']]);
        break;
    case 'b':  // reads without keeping the lock, then locks to change key b
        if (!start(['read_and_close' => true])) break;
        $seen = $_SESSION['b'] ?? 0;
        if (!start()) break;
        $_SESSION['b'] = ($_SESSION['b'] ?? 0) + 1;
        reply(['seen' => $seen, 'b' => $_SESSION['b']]);
        break;
    case 'get':  // reads, locks nothing past session_start()
        if (!start(['read_and_close' => true])) break;
        reply(['id' => session_id(), 'session' => $_SESSION]);
        break;
    case 'set':  // ?k=...&v=... (an integer)
        if (!start()) break;
        $_SESSION[$_GET['k']] = (int)$_GET['v'];
        reply(['id' => session_id()]);
        break;
    case 'touch':  // reads under the lock, changes nothing (lazy_write)
        if (!start()) break;
        reply(['id' => session_id(), 'n' => $_SESSION['n'] ?? null]);
        break;
    case 'regenerate':
        if (!start()) break;
        $old = session_id();
        session_regenerate_id(true);
        reply(['old' => $old, 'id' => session_id()]);
        break;
    case 'destroy':
        if (!start()) break;
        $id = session_id();
        reply(['id' => $id, 'destroyed' => session_destroy()]);
        break;
    case 'expiring':  // a session that expires after 1 s idle
        ini_set('session.gc_maxlifetime', '1');
        if (!start()) break;
        $_SESSION['x'] = 1;
        reply(['id' => session_id()]);
        break;
    case 'gc':
        if (!start()) break;
        reply(['freed' => session_gc()]);
        break;
    case 'hold':  // n = 99 under the lock, then holds it until released or killed
        if (!start()) break;
        $_SESSION['n'] = 99;
        hold('hold');
        reply(['n' => $_SESSION['n']]);
        break;
    case 'hold_incr':  // n + 1 under the lock, written once the test releases it
        if (!start()) break;
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        hold('hold_incr');
        reply(['n' => $_SESSION['n']]);
        break;
    case 'impatient':  // waits at most 300 ms for the lock
        ini_set('shmsession.lock_wait_ms', '300');
        if (!start()) break;
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1000;  // must never happen while another holds it
        reply(['started' => true, 'n' => $_SESSION['n']]);
        break;
    default:
        reply(['error' => "unknown op '$op'"], 400);
}
