# Galley's command executor on an ssh host (docs/ssh.md, "The executor"). Started once per
# connection through the login shell, so its environment is what the user's rc made; it then
# detaches, listens on DIR/s (DIR private, mode 0700) and forks one handler per connection that
# Galley opens through the master's forward to that socket. It ends with the connection: when
# the sshd process that started it is gone, or on a quit request.
# Frames both ways: a type byte, a 32-bit big-endian length, the data.
# Requests: C (command: length-prefixed fields dir, stdin flag, argc, argv..., name, value...),
# then I (stdin bytes) and E (end of stdin); K ("SIGNAL PGID"); H (hello, answered H); Q (quit).
# Replies to C: P (pid = process group), O (stdout), R (stderr), X ("c CODE" or "s SIGNAL")
# or F ("dir ERRNO TEXT" / "exec ERRNO TEXT": the command did not start).
# No modules: Socket.pm alone costs more start-up time than the rest together, and start-up is
# paid once per host on every cold fan-out. AF_UNIX and SOCK_STREAM are 1 on Linux (elsewhere a
# call fails and Galley falls back to channels); a write of at most 4096 bytes to a pipe that
# select calls writable does not block on Linux, so stdin needs no O_NONBLOCK.
use strict;

$0 = 'galley-executor';
my $dir  = shift @ARGV;
my $path = "$dir/s";
my $boss = getppid();

sub alive { my $pid = shift; kill(0, $pid) || $!{EPERM} }
sub unix_address { pack('Sa*x', 1, shift) }

if (!mkdir($dir, 0700)) {
    die "galley-executor: cannot create $dir: $!\n" unless $!{EEXIST};
    my @st = lstat($dir);
    die "galley-executor: $dir is not a private folder of this user\n"
        unless @st && -d _ && !-l _ && $st[4] == $< && ($st[2] & 077) == 0;
}
socket(my $srv, 1, 1, 0) or die "galley-executor: socket: $!\n";
if (connect($srv, unix_address($path))) {
    # Another run on this connection started one already.
    print "ready\n";
    exit 0;
}
close $srv;
socket($srv, 1, 1, 0) or die "galley-executor: socket: $!\n";
unlink $path;
bind($srv, unix_address($path)) or die "galley-executor: bind $path: $!\n";
listen($srv, 128) or die "galley-executor: listen: $!\n";

my $daemon = fork;
die "galley-executor: fork: $!\n" unless defined $daemon;
if ($daemon) {
    print "ready\n";
    exit 0;
}
open(STDIN, '<', '/dev/null');
open(STDOUT, '>', '/dev/null');
open(STDERR, '>', '/dev/null');
my $quit = 0;
$SIG{CHLD} = 'IGNORE';
$SIG{PIPE} = 'IGNORE';
$SIG{HUP}  = 'IGNORE';
$SIG{TERM} = sub { $quit = 1 };
my $main = $$;
while (!$quit && alive($boss)) {
    my $rin = '';
    vec($rin, fileno($srv), 1) = 1;
    next unless select(my $rout = $rin, undef, undef, 1) > 0;
    accept(my $c, $srv) or next;
    my $pid = fork;
    if (defined $pid && $pid == 0) {
        close $srv;
        serve($c);
        exit 0;
    }
    close $c;
}
unlink $path;
rmdir $dir;
exit 0;

sub put {
    my ($fh, $type, $data) = @_;
    my $buf = pack('aN', $type, length $data) . $data;
    while (length $buf) {
        my $n = syswrite($fh, $buf);
        # SIGCHLD (the command ending) interrupts a write that Galley's reading holds up: the
        # frame is still to be sent, whole.
        next if !defined $n && $!{EINTR};
        return 0 unless $n;
        substr($buf, 0, $n) = '';
    }
    return 1;
}

sub take {
    my ($fh, $n) = @_;
    my $buf = '';
    while (length($buf) < $n) {
        my $got = sysread($fh, $buf, $n - length($buf), length($buf));
        next if !defined $got && $!{EINTR};
        return undef unless $got;
    }
    return $buf;
}

sub get {
    my $fh = shift;
    my $head = take($fh, 5);
    return () unless defined $head;
    my ($type, $len) = unpack('aN', $head);
    my $data = $len ? take($fh, $len) : '';
    return () unless defined $data;
    return ($type, $data);
}

# Moves one read of the command's pipe $key to Galley: the bytes read, -1 when a signal
# interrupted the read, 0 at the pipe's end (it is closed and leaves %$open).
sub pump {
    my ($c, $open, $key) = @_;
    my $n = sysread($open->{$key}, my $buf, 65536);
    if ($n) {
        put($c, $key, $buf) if $c;
        return $n;
    }
    return -1 if !defined $n && $!{EINTR};
    close $open->{$key};
    delete $open->{$key};
    return 0;
}

# What is in the pipes now, at most 1 MiB of each.
sub drain {
    my ($c, $open) = @_;
    for my $key (keys %$open) {
        my $left = 1 << 20;
        while ($left > 0) {
            my $rin = '';
            vec($rin, fileno($open->{$key}), 1) = 1;
            last unless select($rin, undef, undef, 0) > 0;
            my $n = pump($c, $open, $key);
            last unless $n;
            $left -= $n if $n > 0;
        }
    }
}

sub serve {
    my $c = shift;
    # Whatever connects and says nothing (not Galley) is not waited for.
    my $rin = '';
    vec($rin, fileno($c), 1) = 1;
    return unless select($rin, undef, undef, 10) > 0;
    my ($type, $data) = get($c);
    return unless defined $type;
    if ($type eq 'K') {
        my ($sig, $pgid) = split / /, $data;
        kill($sig, -$pgid) if $pgid =~ /^\d+$/ && $pgid > 1;
        return;
    }
    if ($type eq 'H') {
        put($c, 'H', '');
        return;
    }
    if ($type eq 'Q') {
        kill('TERM', $main);
        return;
    }
    return unless $type eq 'C';
    my @f = unpack('(N/a*)*', $data);
    my ($cwd, $has_stdin, $argc) = splice(@f, 0, 3);
    my @argv = splice(@f, 0, $argc);
    my %env = @f;
    $SIG{CHLD} = 'DEFAULT';
    pipe(my $or, my $ow) or return;
    pipe(my $er, my $ew) or return;
    pipe(my $sr, my $sw) or return;
    my ($ir, $iw);
    if ($has_stdin) { pipe($ir, $iw) or return }
    my $pid = fork;
    return unless defined $pid;
    if ($pid == 0) {
        setpgrp(0, 0);
        $SIG{$_} = 'DEFAULT' for qw(CHLD PIPE HUP TERM INT QUIT);
        if ($has_stdin) { open(STDIN, '<&', $ir) } else { open(STDIN, '<', '/dev/null') }
        open(STDOUT, '>&', $ow);
        open(STDERR, '>&', $ew);
        if ($cwd ne '' && !chdir($cwd)) {
            syswrite($sw, 'dir ' . ($! + 0) . " $!");
            exit 126;
        }
        $ENV{$_} = $env{$_} for keys %env;
        { no warnings 'exec'; exec { $argv[0] } @argv }
        syswrite($sw, 'exec ' . ($! + 0) . " $!");
        exit 127;
    }
    close $ow;
    close $ew;
    close $sw;
    close $ir if $has_stdin;
    my $failed = '';
    1 while sysread($sr, $failed, 4096, length $failed);
    close $sr;
    if (length $failed) {
        waitpid($pid, 0);
        put($c, 'F', $failed);
        return;
    }
    put($c, 'P', $pid);
    my $gone = 0;
    $SIG{CHLD} = sub { $gone = 1 };
    my ($input, $input_end) = ('', !$has_stdin);
    my %open = (O => $or, R => $er);
    my ($status, $drain_until);
    while (1) {
        if (!defined $status && waitpid($pid, 1) == $pid) {
            $status = $?;
            # A background process may keep the output open: read what comes for 2 s more.
            $drain_until = time + 2;
        }
        last if defined $status && !%open;
        if (defined $status && time >= $drain_until) {
            # What the command wrote before it ended is in the pipes now, however slowly Galley
            # has been reading: take it all (a pipe holds at most its capacity, so a background
            # process that keeps writing is not waited for beyond that).
            drain($c, \%open);
            last;
        }
        if (getppid() != $main) {
            # The executor is gone (the connection ended, or it was killed).
            kill('TERM', -$pid);
            return;
        }
        my ($rin, $win) = ('', '');
        vec($rin, fileno($c), 1) = 1 if $c;
        vec($rin, fileno($_), 1) = 1 for values %open;
        vec($win, fileno($iw), 1) = 1 if $iw && length $input;
        my $wait = defined $status ? 0.2 : 1;
        next unless select(my $rout = $rin, my $wout = $win, undef, $wait) > 0;
        for my $key (keys %open) {
            pump($c, \%open, $key) if vec($rout, fileno($open{$key}), 1);
        }
        if ($c && vec($rout, fileno($c), 1)) {
            my ($t, $d) = get($c);
            if (!defined $t) {
                # Galley went away without waiting for the end: stop the command.
                kill('TERM', -$pid);
                undef $c;
            }
            elsif ($t eq 'I') { $input .= $d }
            elsif ($t eq 'E') { $input_end = 1 }
        }
        if ($iw && length $input && vec($wout, fileno($iw), 1)) {
            my $n = syswrite($iw, $input, 4096);
            if (defined $n) { substr($input, 0, $n) = '' }
            elsif (!$!{EAGAIN} && !$!{EINTR}) { $input = ''; $input_end = 1 }
        }
        if ($iw && $input_end && !length $input) { close $iw; undef $iw }
    }
    return unless $c;
    my $end = ($status & 127) ? 's ' . ($status & 127) : 'c ' . ($status >> 8);
    put($c, 'X', $end);
}
