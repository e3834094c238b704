/*
 * <lockn-pacman> - a self-contained Pac-Man clone for the LockN web console.
 *
 * Plain ES module, no dependencies, no build step, no external assets. It is
 * written for a strict Content-Security-Policy (script-src 'self', no
 * 'unsafe-inline', no 'unsafe-eval'): no inline scripts or styles, no style
 * attributes in markup, no eval or string timers. All styling is in
 * pacman.css; sizes are set from JS through the CSSOM only.
 *
 * Usage:
 *   <link rel="stylesheet" href="/pacman/pacman.css">
 *   <script type="module" src="/pacman/pacman.js"></script>
 *   <lockn-pacman></lockn-pacman>
 *
 * The element renders into its light DOM: a HUD (score, high score, level,
 * lives), a <canvas>, a pause/resume button, a hint line and a visually
 * hidden aria-live="polite" region. Removing it from the document stops the
 * animation loop and removes every listener it added; adding it back resumes.
 * The high score is kept in memory only (shared by all instances on the page,
 * lost on reload).
 *
 * Optional host tuning: the CSS custom property --lockn-pacman-reserve (a
 * length in px, default 0) on the element is subtracted from the viewport
 * height when sizing the canvas, for pages with a fixed header.
 *
 * ---------------------------------------------------------------- TEST API
 * (stable; the console's browser tests rely on it)
 *
 * element.state() -> plain JSON-serialisable snapshot:
 *   {
 *     status: "ready" | "playing" | "paused" | "dying" | "levelComplete" | "gameOver",
 *     score: number, highScore: number,
 *     lives: number,          // including the life being played; 3 at start,
 *                             // decremented the moment Pac-Man is caught
 *     level: number,          // 1-based
 *     pelletsLeft: number,    // dots + power pellets still on the board (244 at level start)
 *     pacman: { col, row, dir },  // tile (0..27, 0..30); dir: "left"|"right"|"up"|"down"|"none"
 *                                 // ("none" while standing still)
 *     ghosts: [ { name, col, row, mode } ],  // names "blinky", "pinky", "inky", "clyde";
 *                             // mode: "scatter"|"chase"|"frightened"|"eyes" (eaten, going home)
 *                             //       |"house" (waiting in or leaving the ghost house)
 *     mode: "scatter" | "chase" | "frightened",  // the global ghost mode
 *     time: number            // seconds of game clock; advances only while status is
 *                             // "playing" (stops when paused)
 *   }
 *
 * The element also reflects the same status string in its data-status attribute.
 *
 * Events (CustomEvent, bubbles, composed), dispatched on the element:
 *   pacman-score      detail: score (number), on every score change (also 0 on a new game)
 *   pacman-life-lost  detail: lives left (number), the moment Pac-Man is caught
 *   pacman-game-over  detail: final score (number)
 *   pacman-level      detail: level (number), whenever a level starts (level 1 included)
 *
 * Start: the game does NOT auto-start. It begins in status "ready" (idle,
 * with a "press to start" overlay). The first input - a direction key
 * (arrows / WASD), Enter, a tap or a swipe on the canvas - starts the game:
 * "pacman-level" (1) fires, "READY!" is shown for 2 s (status stays "ready"),
 * then status becomes "playing". A direction given at start (or during the
 * READY! delay) is buffered, so pressing ArrowLeft once makes Pac-Man walk left
 * as soon as play begins. Every new life and level also starts with a 2 s
 * "ready" delay. After "gameOver", Enter or a tap starts a new game.
 *
 * Input:
 *   - Arrow keys / WASD: move (turns are buffered until they can be taken).
 *     Keys are read while the element (or something inside it) has focus, or
 *     while nothing in particular on the page has focus (document.body).
 *     Arrow keys and Space have their default (scrolling) prevented.
 *   - P or Space, or the button: pause / resume. The game also pauses when
 *     the tab becomes hidden (it does not resume by itself).
 *   - Enter: start / play again (also resumes when paused).
 *   - Pointer Events on the canvas: a swipe (pointerdown -> pointerup, or
 *     pointermove, of at least 24 CSS px; the dominant axis gives the
 *     direction) steers; a tap (under 12 px) starts / restarts the game or
 *     resumes a paused one. Plain TouchEvents are honoured too when no pointer
 *     events accompany them.
 *
 * Rules: classic 28x31 maze, 240 dots (10) and 4 power pellets (50); ghosts
 * eaten in one power period score 200/400/800/1600; bonus fruit appears after
 * 70 and 170 dots; an extra life at 10,000 points; 3 lives. Unlike the arcade,
 * there are no "no upward turn" tiles above the ghost house and the start, so
 * there is no spot where a motionless Pac-Man is safe. The simulation runs
 * on a fixed 1/240 s timestep driven by requestAnimationFrame (frame gaps are
 * clamped to 0.2 s), so game speed does not depend on the frame rate.
 * ------------------------------------------------------------------------
 */

const COLS = 28;
const ROWS = 31;

// '#' wall, '-' ghost house door, '.' dot, 'o' power pellet, ' ' empty.
const MAZE = [
  '############################',
  '#............##............#',
  '#.####.#####.##.#####.####.#',
  '#o####.#####.##.#####.####o#',
  '#.####.#####.##.#####.####.#',
  '#..........................#',
  '#.####.##.########.##.####.#',
  '#.####.##.########.##.####.#',
  '#......##....##....##......#',
  '######.##### ## #####.######',
  '     #.##### ## #####.#     ',
  '     #.##          ##.#     ',
  '     #.## ###--### ##.#     ',
  '######.## #      # ##.######',
  '      .   #      #   .      ',
  '######.## #      # ##.######',
  '     #.## ######## ##.#     ',
  '     #.##          ##.#     ',
  '     #.## ######## ##.#     ',
  '######.## ######## ##.######',
  '#............##............#',
  '#.####.#####.##.#####.####.#',
  '#.####.#####.##.#####.####.#',
  '#o..##.......  .......##..o#',
  '###.##.##.########.##.##.###',
  '###.##.##.########.##.##.###',
  '#......##....##....##......#',
  '#.##########.##.##########.#',
  '#.##########.##.##########.#',
  '#..........................#',
  '############################',
];

const T_EMPTY = 0;
const T_WALL = 1;
const T_DOOR = 2;
const T_DOT = 3;
const T_POWER = 4;

const GRID = new Uint8Array(COLS * ROWS);
for (let r = 0; r < ROWS; r++) {
  for (let c = 0; c < COLS; c++) {
    const ch = MAZE[r][c];
    GRID[r * COLS + c] =
      ch === '#' ? T_WALL : ch === '-' ? T_DOOR : ch === '.' ? T_DOT : ch === 'o' ? T_POWER : T_EMPTY;
  }
}

// Floor tiles reachable from Pac-Man's start (through the door too, so the
// house interior counts); used only to decide where wall outlines go.
const OPEN = (() => {
  const open = new Uint8Array(COLS * ROWS);
  const stack = [[13, 23]];
  while (stack.length) {
    const [c0, r] = stack.pop();
    const c = ((c0 % COLS) + COLS) % COLS;
    if (r < 0 || r >= ROWS) continue;
    const i = r * COLS + c;
    if (open[i] || GRID[i] === T_WALL) continue;
    open[i] = 1;
    stack.push([c + 1, r], [c - 1, r], [c, r + 1], [c, r - 1]);
  }
  for (let i = 0; i < open.length; i++) if (GRID[i] === T_DOOR) open[i] = 0;
  return open;
})();

const DIRS = {
  none: { x: 0, y: 0 },
  up: { x: 0, y: -1 },
  left: { x: -1, y: 0 },
  down: { x: 0, y: 1 },
  right: { x: 1, y: 0 },
};
const OPP = { up: 'down', down: 'up', left: 'right', right: 'left', none: 'none' };
const ORDER = ['up', 'left', 'down', 'right']; // classic tie-break order

const STEP = 1 / 240; // fixed simulation step (s)
const MAX_FRAME = 0.2; // largest frame gap fed to the simulation (s)
const EPS = 1e-6;
const BASE_SPEED = 75.75757625 / 8; // arcade 100% speed in tiles per second
const READY_TIME = 2;
const FREEZE_GHOST_EATEN = 1;
const DEATH_TIME = 3.2;
const LEVEL_CLEAR_TIME = 3;
const SWIPE_MIN = 24;
const TAP_MAX = 12;
const EXTRA_LIFE_AT = 10000;
const TOTAL_PELLETS = GRID.reduce((n, t) => n + (t === T_DOT || t === T_POWER ? 1 : 0), 0);

const HOUSE_EXIT = { x: 14, y: 11.5 };
const HOUSE_CENTER_Y = 14.5;

const GHOSTS = [
  { name: 'blinky', color: '#ff0000', x: 14, y: 11.5, dir: 'left', state: 'active', homeX: 14, scatter: [25, -3] },
  { name: 'pinky', color: '#ffb8ff', x: 14, y: 14.5, dir: 'down', state: 'house', homeX: 14, scatter: [2, -3] },
  { name: 'inky', color: '#00ffff', x: 12, y: 14.5, dir: 'up', state: 'house', homeX: 12, scatter: [27, 31] },
  { name: 'clyde', color: '#ffb852', x: 16, y: 14.5, dir: 'up', state: 'house', homeX: 16, scatter: [0, 31] },
];

const FRUITS = [
  { kind: 'cherry', points: 100 },
  { kind: 'strawberry', points: 300 },
  { kind: 'orange', points: 500 },
  { kind: 'apple', points: 700 },
  { kind: 'melon', points: 1000 },
  { kind: 'galaxian', points: 2000 },
  { kind: 'bell', points: 3000 },
  { kind: 'key', points: 5000 },
];

let sessionHighScore = 0;

function tileAt(col, row) {
  if (row < 0 || row >= ROWS) return T_WALL;
  const c = ((col % COLS) + COLS) % COLS;
  return GRID[row * COLS + c];
}

function blocked(col, row) {
  const t = tileAt(col, row);
  return t === T_WALL || t === T_DOOR;
}

function wrapX(x) {
  return ((x % COLS) + COLS) % COLS;
}

function tileCol(x) {
  return Math.min(COLS - 1, Math.floor(wrapX(x)));
}

// Distance along one axis to the next tile centre ahead (centres sit at k + 0.5);
// 0 when already at a centre.
function toCenter(pos, sign) {
  const c = pos - 0.5;
  const f = c - Math.floor(c);
  if (f < EPS || f > 1 - EPS) return 0;
  return sign > 0 ? 1 - f : f;
}

function snap(pos) {
  return Math.round(pos - 0.5) + 0.5;
}

function levelSpec(level) {
  const L = level;
  const tier = L === 1 ? 0 : L < 5 ? 1 : 2;
  const fright = [6, 5, 4, 3, 3, 2, 2, 2][L - 1] ?? 1;
  const elroy = L === 1 ? 20 : L === 2 ? 30 : L <= 5 ? 40 : L <= 8 ? 50 : L <= 11 ? 60 : L <= 14 ? 80 : L <= 18 ? 100 : 120;
  return {
    pac: [0.8, 0.9, L < 21 ? 1 : 0.9][tier],
    pacFright: [0.9, 0.95, 1][tier],
    ghost: [0.75, 0.85, 0.95][tier],
    ghostFright: [0.5, 0.55, 0.6][tier],
    tunnel: [0.4, 0.45, 0.5][tier],
    elroy1: [0.8, 0.9, 1][tier],
    elroy2: [0.85, 0.95, 1.05][tier],
    elroyDots: elroy,
    fright,
    flashes: fright >= 3 ? 5 : 3,
    // alternating scatter / chase durations, scatter first
    schedule: [
      [7, 20, 7, 20, 5, 20, 5, Infinity],
      [7, 20, 7, 20, 5, 1033, 1 / 60, Infinity],
      [5, 20, 5, 20, 5, 1037, 1 / 60, Infinity],
    ][tier],
    dotLimits: L === 1 ? { pinky: 0, inky: 30, clyde: 60 } : L === 2 ? { pinky: 0, inky: 0, clyde: 50 } : { pinky: 0, inky: 0, clyde: 0 },
    idleLimit: L < 5 ? 4 : 3,
    fruit: FRUITS[L === 1 ? 0 : L === 2 ? 1 : L <= 4 ? 2 : L <= 6 ? 3 : L <= 8 ? 4 : L <= 10 ? 5 : L <= 12 ? 6 : 7],
  };
}

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

const KEY_DIRS = {
  ArrowUp: 'up', ArrowDown: 'down', ArrowLeft: 'left', ArrowRight: 'right',
  Up: 'up', Down: 'down', Left: 'left', Right: 'right',
};
const CODE_DIRS = { KeyW: 'up', KeyA: 'left', KeyS: 'down', KeyD: 'right' };
const LETTER_DIRS = { w: 'up', a: 'left', s: 'down', d: 'right' };

class LockNPacman extends HTMLElement {
  constructor() {
    super();
    this._built = false;
    this._abort = null;
    this._raf = 0;
    this._layoutRaf = 0;
    this._ro = null;
    this._last = null;
    this._acc = 0;
    this._dirty = true;
    this._hud = {};
    this._mazeCache = null;
    this._pointer = null;
    this._lastPointerGesture = -1e9;
    this._touch = null;
    this._frame = this._frame.bind(this);

    this._seed = 0x2f6b1d;
    this.score = 0;
    this.lives = 3;
    this.level = 1;
    this.status = 'idle'; // idle (reported as "ready") | ready | playing | paused | dying | levelComplete | gameOver
    this._resumeStatus = 'playing';
    this.time = 0;
    this._anim = 0;
    this._extraAwarded = false;
    this._initLevel();
    this._resetActors();
  }

  // ------------------------------------------------------------ lifecycle

  connectedCallback() {
    if (!this._built) this._build();
    if (!this.hasAttribute('tabindex')) this.tabIndex = 0;
    if (!this.hasAttribute('role')) this.setAttribute('role', 'application');
    if (!this.hasAttribute('aria-label')) {
      this.setAttribute(
        'aria-label',
        'Pac-Man game. Arrow keys or W A S D to move, P or Space to pause, Enter to start. ' +
          'On a touch screen, swipe on the maze to move and tap it to start.'
      );
    }
    this._abort = new AbortController();
    const signal = this._abort.signal;
    window.addEventListener('keydown', (e) => this._onKey(e), { signal });
    window.addEventListener('resize', () => this._scheduleLayout(), { signal });
    document.addEventListener('visibilitychange', () => this._onVisibility(), { signal });
    const cv = this._canvas;
    cv.addEventListener('pointerdown', (e) => this._onPointerDown(e), { signal });
    cv.addEventListener('pointermove', (e) => this._onPointerMove(e), { signal });
    cv.addEventListener('pointerup', (e) => this._onPointerUp(e), { signal });
    cv.addEventListener('pointercancel', () => { this._pointer = null; }, { signal });
    cv.addEventListener('touchstart', (e) => this._onTouchStart(e), { signal, passive: true });
    cv.addEventListener('touchend', (e) => this._onTouchEnd(e), { signal, passive: true });
    cv.addEventListener('contextmenu', (e) => e.preventDefault(), { signal });
    this._button.addEventListener('click', () => this._onButton(), { signal });
    if (typeof ResizeObserver === 'function') {
      this._ro = new ResizeObserver(() => this._scheduleLayout());
      this._ro.observe(this);
    }
    this._lastLayoutKey = '';
    this._layout();
    this._dirty = true;
    this._last = null;
    this._acc = 0;
    this._raf = requestAnimationFrame(this._frame);
  }

  disconnectedCallback() {
    if (this._abort) this._abort.abort();
    this._abort = null;
    if (this._ro) this._ro.disconnect();
    this._ro = null;
    cancelAnimationFrame(this._raf);
    cancelAnimationFrame(this._layoutRaf);
    this._raf = 0;
    this._layoutRaf = 0;
    this._pointer = null;
    this._touch = null;
    if (this._isPausable()) this._pause(false);
  }

  _build() {
    this._built = true;
    const stat = (key, label) => {
      const value = h('span', { class: 'lockn-pacman__value', 'data-stat': key }, key === 'lives' ? '' : '0');
      this._hud[key] = value;
      return h('div', { class: `lockn-pacman__stat lockn-pacman__stat--${key}` },
        h('span', { class: 'lockn-pacman__label' }, label), value);
    };
    const hud = h('div', { class: 'lockn-pacman__hud' },
      stat('score', 'Score'), stat('high', 'High score'), stat('level', 'Level'), stat('lives', 'Lives'));
    this._canvas = h('canvas', { class: 'lockn-pacman__canvas', 'aria-hidden': 'true' });
    this._ctx = this._canvas.getContext('2d', { alpha: false });
    this._overlayTitle = h('p', { class: 'lockn-pacman__overlay-title' });
    this._overlayText = h('p', { class: 'lockn-pacman__overlay-text' });
    this._overlay = h('div', { class: 'lockn-pacman__overlay', 'aria-hidden': 'true' },
      h('div', { class: 'lockn-pacman__panel' }, this._overlayTitle, this._overlayText));
    this._stage = h('div', { class: 'lockn-pacman__stage' }, this._canvas, this._overlay);
    this._button = h('button', { type: 'button', class: 'lockn-pacman__pause' }, 'Pause');
    const controls = h('div', { class: 'lockn-pacman__controls' },
      this._button,
      h('p', { class: 'lockn-pacman__hint' }, 'Arrow keys or swipe to move \u00b7 P or Space to pause'));
    this._live = h('div', { class: 'lockn-pacman__sr', 'aria-live': 'polite', 'aria-atomic': 'true' });
    this._hudEl = hud;
    this._controlsEl = controls;
    this.append(hud, this._stage, controls, this._live);
    this._shown = {};
  }

  // -------------------------------------------------------------- public

  state() {
    const p = this.pac;
    return {
      status: this.status === 'idle' ? 'ready' : this.status,
      score: this.score,
      highScore: Math.max(sessionHighScore, this.score),
      lives: this.lives,
      level: this.level,
      pelletsLeft: this.pelletsLeft,
      pacman: { col: tileCol(p.x), row: Math.floor(p.y), dir: p.dir },
      ghosts: this.ghosts.map((g) => ({ name: g.name, col: tileCol(g.x), row: Math.floor(g.y), mode: this._ghostMode(g) })),
      mode: this._mode(),
      time: Math.round(this.time * 1000) / 1000,
    };
  }

  // ------------------------------------------------------------ game setup

  _initLevel() {
    this.spec = levelSpec(this.level);
    this.pellets = new Uint8Array(COLS * ROWS);
    for (let i = 0; i < GRID.length; i++) if (GRID[i] === T_DOT || GRID[i] === T_POWER) this.pellets[i] = GRID[i];
    this.pelletsLeft = TOTAL_PELLETS;
    this._dotsEaten = 0;
    this._useGlobalCounter = false;
    this._globalDots = 0;
    this._dotCounters = { pinky: 0, inky: 0, clyde: 0 };
    this._rng = (this._seed ^ (this.level * 0x9e3779b1)) >>> 0 || 1;
  }

  _resetActors() {
    this.pac = { x: 14, y: 23.5, dir: 'none', next: 'none', facing: 'left', anim: 0, stall: 0 };
    this.ghosts = GHOSTS.map((g) => ({ ...g, frightened: false, bob: 0 }));
    this._modeIndex = 0;
    this._modeTime = 0;
    this._fright = 0;
    this._combo = 0;
    this._idle = 0;
    this._freeze = 0;
    this._eatenGhost = null;
    this._popups = [];
    this._fruit = null;
    this._deathTime = 0;
    this._levelTime = 0;
    this._dirty = true;
  }

  _startGame() {
    this.score = 0;
    this.lives = 3;
    this.level = 1;
    this.time = 0;
    this._extraAwarded = false;
    this._seed = (Math.random() * 0xffffffff) >>> 0;
    this._initLevel();
    this._resetActors();
    this._emit('pacman-score', 0);
    this._beginLevel();
  }

  _beginLevel() {
    this.status = 'ready';
    this._readyTime = READY_TIME;
    this._emit('pacman-level', this.level);
    this._announce(`Level ${this.level}. Ready!`);
    this._dirty = true;
  }

  // ---------------------------------------------------------------- loop

  _frame(now) {
    this._raf = requestAnimationFrame(this._frame);
    if (this._last === null) this._last = now;
    let dt = (now - this._last) / 1000;
    this._last = now;
    if (!(dt > 0)) dt = 0;
    if (dt > MAX_FRAME) dt = MAX_FRAME;
    this._acc += dt;
    while (this._acc >= STEP) {
      this._tick(STEP);
      this._acc -= STEP;
    }
    this._syncDom();
    const animating = this.status === 'ready' || this.status === 'playing' || this.status === 'dying' || this.status === 'levelComplete';
    if (animating || this._dirty) {
      this._dirty = false;
      this._render();
    }
  }

  _tick(dt) {
    switch (this.status) {
      case 'ready':
        this._anim += dt;
        this._readyTime -= dt;
        if (this._readyTime <= 0) {
          this.status = 'playing';
          this._dirty = true;
        }
        break;
      case 'playing':
        this._anim += dt;
        this.time += dt;
        this._play(dt);
        break;
      case 'dying':
        this._anim += dt;
        this._deathTime += dt;
        if (this._deathTime >= DEATH_TIME) this._afterDeath();
        break;
      case 'levelComplete':
        this._anim += dt;
        this._levelTime += dt;
        if (this._levelTime >= LEVEL_CLEAR_TIME) {
          this.level += 1;
          this._initLevel();
          this._resetActors();
          this._beginLevel();
        }
        break;
      default:
        break;
    }
  }

  _play(dt) {
    for (const p of this._popups) p.t -= dt;
    if (this._popups.length) this._popups = this._popups.filter((p) => p.t > 0);
    if (this._freeze > 0) {
      this._freeze -= dt;
      if (this._freeze <= 0) this._eatenGhost = null;
      return;
    }
    const spec = this.spec;

    // frightened timer, then the scatter / chase schedule (paused while frightened)
    if (this._fright > 0) {
      this._fright -= dt;
      if (this._fright <= 0) {
        this._fright = 0;
        for (const g of this.ghosts) g.frightened = false;
      }
    } else if (this._modeIndex < spec.schedule.length - 1) {
      this._modeTime += dt;
      if (this._modeTime >= spec.schedule[this._modeIndex]) {
        this._modeTime -= spec.schedule[this._modeIndex];
        this._modeIndex += 1;
        this._reverseGhosts();
      }
    }

    if (this._fruit) {
      this._fruit.t -= dt;
      if (this._fruit.t <= 0) this._fruit = null;
    }

    // ghost house release
    this._idle += dt;
    if (this._idle >= spec.idleLimit) {
      this._idle = 0;
      const g = this._waitingGhost();
      if (g) this._release(g);
    }
    this._checkRelease();

    // Pac-Man
    const pac = this.pac;
    if (pac.stall > 0) {
      pac.stall -= dt;
    } else {
      const speed = (this._fright > 0 ? spec.pacFright : spec.pac) * BASE_SPEED;
      this._movePac(speed * dt);
      this._eat();
      if (this.status !== 'playing') return;
    }
    if (this._collide() || this._freeze > 0) return;

    for (const g of this.ghosts) this._moveGhost(g, this._ghostSpeed(g) * dt);
    this._collide();
  }

  // ------------------------------------------------------------- Pac-Man

  _pacCanStart(dir) {
    const p = this.pac;
    const v = DIRS[dir];
    if (v.x !== 0) {
      if (toCenter(p.y, 1) !== 0) return false;
      if (toCenter(p.x, v.x) !== 0) return !blocked(Math.floor(wrapX(p.x + v.x * 0.5)), Math.floor(p.y));
      return !blocked(Math.floor(p.x) + v.x, Math.floor(p.y));
    }
    if (toCenter(p.x, 1) !== 0) return false;
    if (toCenter(p.y, v.y) !== 0) return !blocked(Math.floor(p.x), Math.floor(p.y + v.y * 0.5));
    return !blocked(Math.floor(p.x), Math.floor(p.y) + v.y);
  }

  _movePac(dist) {
    const p = this.pac;
    for (let guard = 0; dist > EPS && guard < 8; guard++) {
      if (p.dir !== 'none' && p.next === OPP[p.dir]) p.dir = p.next;
      if (p.dir === 'none') {
        if (p.next === 'none' || !this._pacCanStart(p.next)) return;
        p.dir = p.next;
      }
      let v = DIRS[p.dir];
      let d = v.x !== 0 ? toCenter(p.x, v.x) : toCenter(p.y, v.y);
      if (d === 0) {
        p.x = wrapX(snap(p.x));
        p.y = snap(p.y);
        const col = Math.floor(p.x);
        const row = Math.floor(p.y);
        if (p.next !== 'none' && p.next !== p.dir) {
          const n = DIRS[p.next];
          if (!blocked(col + n.x, row + n.y)) p.dir = p.next;
        }
        v = DIRS[p.dir];
        if (blocked(col + v.x, row + v.y)) {
          p.facing = p.dir;
          p.dir = 'none';
          return;
        }
        d = 1;
      }
      const step = Math.min(dist, d);
      p.x = wrapX(p.x + v.x * step);
      p.y += v.y * step;
      p.anim += step;
      p.facing = p.dir;
      dist -= step;
    }
  }

  _eat() {
    const p = this.pac;
    const col = tileCol(p.x);
    const row = Math.floor(p.y);
    const i = row * COLS + col;
    const t = this.pellets[i];
    if (t) {
      this.pellets[i] = 0;
      this.pelletsLeft -= 1;
      this._dotsEaten += 1;
      this._idle = 0;
      this._countDot();
      if (t === T_POWER) {
        p.stall = 3 / 60;
        this._addScore(50);
        this._frighten();
      } else {
        p.stall = 1 / 60;
        this._addScore(10);
      }
      if (this._dotsEaten === 70 || this._dotsEaten === 170) {
        this._fruit = { ...this.spec.fruit, t: 9.5 };
      }
      if (this.pelletsLeft === 0) {
        this.status = 'levelComplete';
        this._levelTime = 0;
        this._fright = 0;
        this._announce(`Level ${this.level} cleared!`);
        this._dirty = true;
        return;
      }
    }
    if (this._fruit && row === 17 && Math.abs(p.x - 14) < 0.75) {
      this._addScore(this._fruit.points);
      this._popups.push({ x: 14, y: 17.5, text: String(this._fruit.points), color: '#ffb8ff', t: 2 });
      this._fruit = null;
    }
  }

  _addScore(n) {
    this.score += n;
    if (!this._extraAwarded && this.score >= EXTRA_LIFE_AT) {
      this._extraAwarded = true;
      this.lives += 1;
      this._announce('Extra life!');
    }
    if (this.score > sessionHighScore) sessionHighScore = this.score;
    this._emit('pacman-score', this.score);
  }

  _frighten() {
    this._combo = 0;
    this._fright = this.spec.fright;
    for (const g of this.ghosts) {
      if (g.state === 'eyes' || g.state === 'entering') continue;
      g.frightened = true;
      if (g.state === 'active') g.dir = OPP[g.dir];
    }
  }

  // -------------------------------------------------------------- ghosts

  _mode() {
    if (this._fright > 0) return 'frightened';
    return this._modeIndex % 2 === 0 ? 'scatter' : 'chase';
  }

  _ghostMode(g) {
    if (g.state === 'eyes' || g.state === 'entering') return 'eyes';
    if (g.frightened) return 'frightened';
    if (g.state !== 'active') return 'house';
    return this._modeIndex % 2 === 0 ? 'scatter' : 'chase';
  }

  _reverseGhosts() {
    for (const g of this.ghosts) if (g.state === 'active') g.dir = OPP[g.dir];
  }

  _waitingGhost() {
    for (const name of ['pinky', 'inky', 'clyde']) {
      const g = this.ghosts.find((x) => x.name === name);
      if (g.state === 'house') return g;
    }
    return null;
  }

  _release(g) {
    g.state = 'leaving';
  }

  _countDot() {
    if (this._useGlobalCounter) {
      this._globalDots += 1;
      return;
    }
    const g = this._waitingGhost();
    if (g) this._dotCounters[g.name] += 1;
  }

  _checkRelease() {
    const g = this._waitingGhost();
    if (!g) return;
    if (this._useGlobalCounter) {
      const need = { pinky: 7, inky: 17, clyde: 32 }[g.name];
      if (this._globalDots >= need) {
        this._release(g);
        if (g.name === 'clyde') this._useGlobalCounter = false;
      }
    } else if (this._dotCounters[g.name] >= this.spec.dotLimits[g.name]) {
      this._release(g);
    }
  }

  _elroy() {
    const clyde = this.ghosts[3];
    if (clyde.state === 'house') return 0;
    if (this.pelletsLeft <= this.spec.elroyDots / 2) return 2;
    if (this.pelletsLeft <= this.spec.elroyDots) return 1;
    return 0;
  }

  _ghostSpeed(g) {
    const spec = this.spec;
    if (g.state === 'eyes' || g.state === 'entering') return BASE_SPEED * 1.6;
    if (g.state === 'house' || g.state === 'leaving') return BASE_SPEED * 0.45;
    const row = Math.floor(g.y);
    const col = tileCol(g.x);
    if (row === 14 && (col <= 5 || col >= 22)) return spec.tunnel * BASE_SPEED;
    if (g.frightened) return spec.ghostFright * BASE_SPEED;
    if (g.name === 'blinky') {
      const e = this._elroy();
      if (e === 2) return spec.elroy2 * BASE_SPEED;
      if (e === 1) return spec.elroy1 * BASE_SPEED;
    }
    return spec.ghost * BASE_SPEED;
  }

  _rand() {
    // xorshift32
    let x = this._rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this._rng = x >>> 0;
    return this._rng / 4294967296;
  }

  _target(g) {
    if (g.state === 'eyes') return [13, 11];
    const p = this.pac;
    const pc = tileCol(p.x);
    const pr = Math.floor(p.y);
    const f = DIRS[p.facing] || DIRS.left;
    const upBug = f.y < 0; // the arcade's overflow: "up" also shifts left
    const chase = this._modeIndex % 2 === 1 || (g.name === 'blinky' && this._elroy() > 0);
    if (!chase) return g.scatter;
    switch (g.name) {
      case 'blinky':
        return [pc, pr];
      case 'pinky':
        return [pc + 4 * f.x - (upBug ? 4 : 0), pr + 4 * f.y];
      case 'inky': {
        const b = this.ghosts[0];
        const px = pc + 2 * f.x - (upBug ? 2 : 0);
        const py = pr + 2 * f.y;
        return [2 * px - tileCol(b.x), 2 * py - Math.floor(b.y)];
      }
      default: {
        const dx = tileCol(g.x) - pc;
        const dy = Math.floor(g.y) - pr;
        return dx * dx + dy * dy > 64 ? [pc, pr] : g.scatter;
      }
    }
  }

  _chooseDir(g, col, row) {
    const rev = OPP[g.dir];
    const options = [];
    for (const d of ORDER) {
      if (d === rev) continue;
      const v = DIRS[d];
      if (blocked(col + v.x, row + v.y)) continue;
      options.push(d);
    }
    if (!options.length) return rev;
    if (g.state === 'active' && g.frightened) {
      const start = Math.floor(this._rand() * 4);
      for (let k = 0; k < 4; k++) {
        const d = ORDER[(start + k) % 4];
        if (options.includes(d)) return d;
      }
    }
    const [tx, ty] = this._target(g);
    let best = options[0];
    let bestD = Infinity;
    for (const d of options) {
      const v = DIRS[d];
      const dx = col + v.x - tx;
      const dy = row + v.y - ty;
      const dd = dx * dx + dy * dy;
      if (dd < bestD) {
        bestD = dd;
        best = d;
      }
    }
    return best;
  }

  _moveToward(g, axis, target, dist) {
    const delta = target - g[axis];
    const step = Math.min(Math.abs(delta), dist);
    g[axis] += Math.sign(delta) * step;
    if (Math.abs(target - g[axis]) < EPS) g[axis] = target;
    if (delta !== 0) g.dir = axis === 'x' ? (delta > 0 ? 'right' : 'left') : delta > 0 ? 'down' : 'up';
    return dist - step;
  }

  _moveGhost(g, dist) {
    for (let guard = 0; dist > EPS && guard < 8; guard++) {
      if (g.state === 'house') {
        // bob up and down between y 14 and 15
        const target = g.dir === 'up' ? HOUSE_CENTER_Y - 0.5 : HOUSE_CENTER_Y + 0.5;
        if (g.dir !== 'up' && g.dir !== 'down') g.dir = 'up';
        dist = this._moveToward(g, 'y', target, dist);
        if (g.y === target) g.dir = OPP[g.dir];
        continue;
      }
      if (g.state === 'leaving') {
        if (Math.abs(g.x - HOUSE_EXIT.x) > EPS) {
          if (Math.abs(g.y - HOUSE_CENTER_Y) > EPS) dist = this._moveToward(g, 'y', HOUSE_CENTER_Y, dist);
          else dist = this._moveToward(g, 'x', HOUSE_EXIT.x, dist);
        } else if (g.y > HOUSE_EXIT.y + EPS) {
          g.x = HOUSE_EXIT.x;
          dist = this._moveToward(g, 'y', HOUSE_EXIT.y, dist);
        } else {
          g.x = HOUSE_EXIT.x;
          g.y = HOUSE_EXIT.y;
          g.state = 'active';
          g.dir = 'left';
        }
        continue;
      }
      if (g.state === 'entering') {
        if (g.y < HOUSE_CENTER_Y - EPS) {
          if (Math.abs(g.x - HOUSE_EXIT.x) > EPS) dist = this._moveToward(g, 'x', HOUSE_EXIT.x, dist);
          else dist = this._moveToward(g, 'y', HOUSE_CENTER_Y, dist);
        } else if (Math.abs(g.x - g.homeX) > EPS) {
          dist = this._moveToward(g, 'x', g.homeX, dist);
        } else {
          g.state = 'leaving';
          g.frightened = false;
          return;
        }
        continue;
      }
      // active or eyes: tile to tile through the maze
      let v = DIRS[g.dir];
      let d = v.x !== 0 ? toCenter(g.x, v.x) : toCenter(g.y, v.y);
      if (d === 0) {
        g.x = wrapX(snap(g.x));
        g.y = snap(g.y);
        const col = Math.floor(g.x);
        const row = Math.floor(g.y);
        if (g.state === 'eyes' && row === 11 && (col === 13 || col === 14)) {
          g.state = 'entering';
          continue;
        }
        g.dir = this._chooseDir(g, col, row);
        v = DIRS[g.dir];
        d = 1;
      }
      const step = Math.min(dist, d);
      g.x = wrapX(g.x + v.x * step);
      g.y += v.y * step;
      dist -= step;
    }
  }

  _collide() {
    const p = this.pac;
    for (const g of this.ghosts) {
      if (g.state !== 'active') continue;
      let dx = Math.abs(g.x - p.x);
      if (dx > COLS / 2) dx = COLS - dx;
      const dy = g.y - p.y;
      if (dx * dx + dy * dy >= 0.36) continue;
      if (g.frightened) {
        g.frightened = false;
        g.state = 'eyes';
        this._combo += 1;
        const points = 200 * 2 ** Math.min(this._combo - 1, 3);
        this._addScore(points);
        this._popups.push({ x: g.x, y: g.y, text: String(points), color: '#00ffff', t: FREEZE_GHOST_EATEN });
        this._freeze = FREEZE_GHOST_EATEN;
        this._eatenGhost = g;
        return false;
      }
      this._die();
      return true;
    }
    return false;
  }

  _die() {
    this.status = 'dying';
    this._deathTime = 0;
    this._fright = 0;
    this._popups = [];
    this._fruit = null;
    this.lives -= 1;
    this._emit('pacman-life-lost', this.lives);
    this._announce(
      this.lives > 0 ? `Life lost. ${this.lives} ${this.lives === 1 ? 'life' : 'lives'} left.` : 'Life lost.'
    );
    this._dirty = true;
  }

  _afterDeath() {
    if (this.lives <= 0) {
      this.status = 'gameOver';
      this._emit('pacman-game-over', this.score);
      this._announce(`Game over. Final score ${this.score}. Press Enter or tap to play again.`);
      this._dirty = true;
      return;
    }
    this._resetActors();
    this._useGlobalCounter = true;
    this._globalDots = 0;
    this.status = 'ready';
    this._readyTime = READY_TIME;
    this._dirty = true;
  }

  // --------------------------------------------------------------- input

  _acceptsKeys() {
    const a = document.activeElement;
    if (!a || a === document.body || a === document.documentElement) return true;
    return this.contains(a);
  }

  _onKey(e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    if (!this._acceptsKeys()) return;
    const onButton = e.target === this._button;
    const dir = KEY_DIRS[e.key] || CODE_DIRS[e.code] || LETTER_DIRS[typeof e.key === 'string' ? e.key.toLowerCase() : ''];
    if (dir) {
      e.preventDefault();
      this._direction(dir);
      return;
    }
    if (e.key === 'Enter') {
      if (onButton) return;
      e.preventDefault();
      if (this.status === 'idle' || this.status === 'gameOver') this._startGame();
      else if (this.status === 'paused') this._resume();
      return;
    }
    if (e.key === ' ' || e.key === 'Spacebar' || e.code === 'Space') {
      if (onButton) return;
      e.preventDefault();
      if (!e.repeat) this._togglePause();
      return;
    }
    if (e.key === 'p' || e.key === 'P' || e.code === 'KeyP') {
      e.preventDefault();
      if (!e.repeat) this._togglePause();
    }
  }

  _direction(dir) {
    if (this.status === 'idle') {
      this._startGame();
      this.pac.next = dir;
    } else if (this.status === 'ready' || this.status === 'playing') {
      this.pac.next = dir;
    }
  }

  _tap() {
    if (this.status === 'idle' || this.status === 'gameOver') this._startGame();
    else if (this.status === 'paused') this._resume();
  }

  _gesture(dx, dy) {
    const dist = Math.hypot(dx, dy);
    if (dist >= SWIPE_MIN) {
      this._direction(Math.abs(dx) > Math.abs(dy) ? (dx > 0 ? 'right' : 'left') : dy > 0 ? 'down' : 'up');
      return true;
    }
    return false;
  }

  _onPointerDown(e) {
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    if (document.activeElement !== this) this.focus({ preventScroll: true, focusVisible: false });
    this._pointer = { id: e.pointerId, x: e.clientX, y: e.clientY, swiped: false };
    try {
      this._canvas.setPointerCapture(e.pointerId);
    } catch {
      // synthetic events have no active pointer to capture
    }
  }

  _onPointerMove(e) {
    const p = this._pointer;
    if (!p || p.id !== e.pointerId) return;
    if (this._gesture(e.clientX - p.x, e.clientY - p.y)) {
      // keep steering with the same finger: measure the next swipe from here
      p.x = e.clientX;
      p.y = e.clientY;
      p.swiped = true;
    }
  }

  _onPointerUp(e) {
    const p = this._pointer;
    if (!p || p.id !== e.pointerId) return;
    this._pointer = null;
    this._lastPointerGesture = performance.now();
    const dx = e.clientX - p.x;
    const dy = e.clientY - p.y;
    if (this._gesture(dx, dy)) return;
    if (!p.swiped && Math.hypot(dx, dy) < TAP_MAX) this._tap();
  }

  // Fallback for environments that deliver TouchEvents without PointerEvents.
  _onTouchStart(e) {
    if (this._pointer || e.changedTouches.length === 0) {
      this._touch = null;
      return;
    }
    const t = e.changedTouches[0];
    this._touch = { x: t.clientX, y: t.clientY, at: performance.now() };
  }

  _onTouchEnd(e) {
    const s = this._touch;
    this._touch = null;
    if (!s || e.changedTouches.length === 0) return;
    if (this._lastPointerGesture >= s.at - 50) return; // pointer events already handled it
    const t = e.changedTouches[0];
    const dx = t.clientX - s.x;
    const dy = t.clientY - s.y;
    if (this._gesture(dx, dy)) return;
    if (Math.hypot(dx, dy) < TAP_MAX) this._tap();
  }

  _onButton() {
    if (this.status === 'idle' || this.status === 'gameOver') this._startGame();
    else this._togglePause();
  }

  _onVisibility() {
    if (document.hidden && this._isPausable()) this._pause(true);
  }

  _isPausable() {
    return this.status === 'ready' || this.status === 'playing' || this.status === 'dying' || this.status === 'levelComplete';
  }

  _togglePause() {
    if (this.status === 'paused') this._resume();
    else if (this._isPausable()) this._pause(true);
  }

  _pause(announce) {
    this._resumeStatus = this.status;
    this.status = 'paused';
    if (announce) this._announce('Paused. Press P, Space or the Resume button to continue.');
    this._dirty = true;
  }

  _resume() {
    if (this.status !== 'paused') return;
    this.status = this._resumeStatus;
    this._announce('Resumed.');
    this._dirty = true;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  _announce(text) {
    if (this._live) this._live.textContent = text;
  }

  // ---------------------------------------------------------- DOM / layout

  _syncDom() {
    if (!this._built) return;
    const s = this._shown;
    const high = Math.max(sessionHighScore, this.score);
    if (s.score !== this.score) this._hud.score.textContent = String((s.score = this.score));
    if (s.high !== high) this._hud.high.textContent = String((s.high = high));
    if (s.level !== this.level) this._hud.level.textContent = String((s.level = this.level));
    if (s.lives !== this.lives) {
      s.lives = this.lives;
      const icons = [];
      for (let i = 0; i < Math.min(this.lives, 6); i++) icons.push(h('span', { class: 'lockn-pacman__life' }));
      this._hud.lives.replaceChildren(...icons);
      this._hud.lives.setAttribute('aria-label', String(this.lives));
      this._hud.lives.setAttribute('title', `${this.lives} ${this.lives === 1 ? 'life' : 'lives'}`);
    }
    if (s.status !== this.status) {
      s.status = this.status;
      this.dataset.status = this.state().status;
      const paused = this.status === 'paused';
      const idle = this.status === 'idle' || this.status === 'gameOver';
      this._button.textContent = paused ? 'Resume' : idle ? 'Start' : 'Pause';
      this._button.setAttribute('aria-pressed', paused ? 'true' : 'false');
      let title = '';
      let text = '';
      if (this.status === 'idle') {
        title = 'PAC-MAN';
        text = 'Press an arrow key or Enter, or tap, to start';
      } else if (this.status === 'gameOver') {
        title = 'GAME OVER';
        text = 'Press Enter or tap to play again';
      } else if (paused) {
        title = 'PAUSED';
        text = 'Press P or Space, or tap, to resume';
      }
      this._overlayTitle.textContent = title;
      this._overlayText.textContent = text;
      this._overlay.hidden = !title;
      this._overlay.classList.toggle('lockn-pacman__overlay--over', this.status === 'gameOver');
    }
  }

  _scheduleLayout() {
    if (this._layoutRaf) return;
    this._layoutRaf = requestAnimationFrame(() => {
      this._layoutRaf = 0;
      this._layout();
    });
  }

  _layout() {
    if (!this._built || !this.isConnected) return;
    const stageW = this._stage.clientWidth || this.clientWidth || 448;
    const chrome = Math.max(0, this.getBoundingClientRect().height - this._stage.getBoundingClientRect().height);
    const reserve = parseFloat(getComputedStyle(this).getPropertyValue('--lockn-pacman-reserve')) || 0;
    const viewH = window.innerHeight || document.documentElement.clientHeight || 800;
    const availH = viewH - chrome - reserve;
    let w = Math.floor(Math.min(stageW, (availH * COLS) / ROWS, 32 * COLS));
    w = Math.max(w, 4 * COLS);
    const cssH = Math.round((w * ROWS) / COLS);
    const dpr = Math.min(window.devicePixelRatio || 1, 3);
    const key = `${w}x${cssH}@${dpr}`;
    if (key === this._lastLayoutKey) return;
    this._lastLayoutKey = key;
    const cv = this._canvas;
    cv.style.width = `${w}px`;
    cv.style.height = `${cssH}px`;
    this.style.setProperty('--lockn-pacman-width', `${w}px`);
    cv.width = Math.round(w * dpr);
    cv.height = Math.round(cssH * dpr);
    this._scale = cv.width / COLS;
    this._mazeCache = null;
    this._dirty = true;
    this._render();
  }

  // --------------------------------------------------------------- render

  _mazeImage(white) {
    if (!this._mazeCache) this._mazeCache = {};
    const k = white ? 'white' : 'blue';
    if (this._mazeCache[k]) return this._mazeCache[k];
    const cv = document.createElement('canvas');
    cv.width = this._canvas.width;
    cv.height = this._canvas.height;
    const ctx = cv.getContext('2d');
    const s = this._scale;
    ctx.setTransform(s, 0, 0, s, 0, 0);
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    const isWall = (c, r) => {
      if (r < 0 || r >= ROWS || c < 0 || c >= COLS) return false;
      const t = GRID[r * COLS + c];
      return t === T_WALL || t === T_DOOR;
    };
    const open = (c, r) => r >= 0 && r < ROWS && c >= 0 && c < COLS && OPEN[r * COLS + c] === 1;
    const path = new Path2D();
    for (let r = 0; r < ROWS; r++) {
      for (let c = 0; c < COLS; c++) {
        if (GRID[r * COLS + c] !== T_WALL) continue;
        const conn = {
          up: isWall(c, r - 1) && (open(c - 1, r) || open(c - 1, r - 1) || open(c + 1, r) || open(c + 1, r - 1)),
          down: isWall(c, r + 1) && (open(c - 1, r) || open(c - 1, r + 1) || open(c + 1, r) || open(c + 1, r + 1)),
          left: isWall(c - 1, r) && (open(c, r - 1) || open(c - 1, r - 1) || open(c, r + 1) || open(c - 1, r + 1)),
          right: isWall(c + 1, r) && (open(c, r - 1) || open(c + 1, r - 1) || open(c, r + 1) || open(c + 1, r + 1)),
        };
        const list = ORDER.filter((d) => conn[d]);
        const cx = c + 0.5;
        const cy = r + 0.5;
        const edge = (d) => [cx + DIRS[d].x * 0.5, cy + DIRS[d].y * 0.5];
        if (list.length === 2 && DIRS[list[0]].x !== DIRS[list[1]].x && DIRS[list[0]].y !== DIRS[list[1]].y) {
          const [ax, ay] = edge(list[0]);
          const [bx, by] = edge(list[1]);
          path.moveTo(ax, ay);
          path.arcTo(cx, cy, bx, by, 0.5);
        } else if (list.length === 0) {
          if (open(c - 1, r) || open(c + 1, r) || open(c, r - 1) || open(c, r + 1)) {
            path.moveTo(cx - 0.01, cy);
            path.lineTo(cx + 0.01, cy);
          }
        } else {
          for (const d of list) {
            const [ex, ey] = edge(d);
            path.moveTo(cx, cy);
            path.lineTo(ex, ey);
          }
        }
      }
    }
    const color = white ? '#ffffff' : '#2a3bff';
    ctx.strokeStyle = color;
    ctx.shadowColor = white ? 'rgba(255,255,255,0.6)' : 'rgba(60,90,255,0.8)';
    ctx.shadowBlur = 0.35 * s;
    ctx.lineWidth = 0.24;
    ctx.stroke(path);
    ctx.shadowBlur = 0;
    // ghost house door
    ctx.strokeStyle = '#ffb8ff';
    ctx.lineWidth = 0.22;
    ctx.lineCap = 'butt';
    ctx.beginPath();
    ctx.moveTo(13, 12.6);
    ctx.lineTo(15, 12.6);
    ctx.stroke();
    this._mazeCache[k] = cv;
    return cv;
  }

  _render() {
    const cv = this._canvas;
    if (!cv || !this._scale || !cv.width) return;
    const ctx = this._ctx;
    const s = this._scale;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, cv.width, cv.height);

    const st = this.status === 'paused' ? this._resumeStatus : this.status;
    const clearing = st === 'levelComplete' && this._levelTime > 1;
    const flashWhite = clearing && Math.floor((this._levelTime - 1) / 0.25) % 2 === 0;
    ctx.drawImage(this._mazeImage(flashWhite), 0, 0);
    ctx.setTransform(s, 0, 0, s, 0, 0);

    // pellets
    ctx.fillStyle = '#ffb8ae';
    const blinkOn = st !== 'playing' || Math.floor(this._anim / 0.2) % 2 === 0;
    for (let r = 0; r < ROWS; r++) {
      for (let c = 0; c < COLS; c++) {
        const t = this.pellets[r * COLS + c];
        if (t === T_DOT) ctx.fillRect(c + 0.375, r + 0.375, 0.25, 0.25);
        else if (t === T_POWER && blinkOn) {
          ctx.beginPath();
          ctx.arc(c + 0.5, r + 0.5, 0.4, 0, Math.PI * 2);
          ctx.fill();
        }
      }
    }

    if (this._fruit) this._drawFruit(ctx, this._fruit.kind, 14, 17.5);

    const dying = st === 'dying';
    const showGhosts = !(dying && this._deathTime > 1) && !(st === 'levelComplete' && this._levelTime > 1) && st !== 'gameOver';
    if (showGhosts) {
      for (const g of this.ghosts) {
        if (g === this._eatenGhost) continue;
        this._wrapDraw(g.x, (x) => this._drawGhost(ctx, g, x, g.y));
      }
    }
    if (!this._eatenGhost && st !== 'gameOver') this._wrapDraw(this.pac.x, (x) => this._drawPac(ctx, x, this.pac.y, st));

    for (const p of this._popups) this._text(p.text, p.x, p.y, p.color, 0.75);
    if (st === 'ready') this._text('READY!', 14, 17.55, '#ffff00', 1.05);
  }

  _wrapDraw(x, draw) {
    draw(x);
    if (x < 1) draw(x + COLS);
    else if (x > COLS - 1) draw(x - COLS);
  }

  _text(str, x, y, color, size) {
    const ctx = this._ctx;
    const s = this._scale;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.font = `bold ${Math.max(8, Math.round(size * s))}px ui-monospace, "Cascadia Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillStyle = color;
    ctx.fillText(str, x * s, y * s);
    ctx.restore();
  }

  _drawPac(ctx, x, y, st) {
    const p = this.pac;
    const R = 0.8;
    let rot = { right: 0, down: Math.PI / 2, left: Math.PI, up: -Math.PI / 2 }[p.facing] ?? Math.PI;
    let mouth;
    if (st === 'dying') {
      if (this._deathTime < 1) mouth = 0.12 * Math.PI;
      else {
        const k = (this._deathTime - 1) / 1.5;
        if (k >= 1) {
          if (this._deathTime < 2.8) {
            // little burst where Pac-Man vanished
            ctx.strokeStyle = '#ffff00';
            ctx.lineWidth = 0.12;
            ctx.beginPath();
            for (let i = 0; i < 8; i++) {
              const a = (i * Math.PI) / 4;
              ctx.moveTo(x + Math.cos(a) * 0.35, y + Math.sin(a) * 0.35);
              ctx.lineTo(x + Math.cos(a) * 0.75, y + Math.sin(a) * 0.75);
            }
            ctx.stroke();
          }
          return;
        }
        rot = -Math.PI / 2;
        mouth = 0.12 * Math.PI + k * 0.88 * Math.PI;
      }
    } else if (st === 'idle' || st === 'ready') {
      mouth = 0;
    } else {
      mouth = 0.02 * Math.PI + 0.23 * Math.PI * Math.abs(Math.sin(p.anim * Math.PI));
    }
    ctx.fillStyle = '#ffff00';
    ctx.beginPath();
    if (mouth <= 0.001) {
      ctx.arc(x, y, R, 0, Math.PI * 2);
    } else {
      ctx.moveTo(x, y);
      ctx.arc(x, y, R, rot + mouth, rot + Math.PI * 2 - mouth);
      ctx.closePath();
    }
    ctx.fill();
  }

  _drawGhost(ctx, g, x, y) {
    const R = 0.78;
    const eyesOnly = g.state === 'eyes' || g.state === 'entering';
    if (!eyesOnly) {
      let body = g.color;
      let face = null;
      if (g.frightened) {
        const flashTime = this.spec.flashes * 0.4;
        const flashing = this._fright > 0 && this._fright < flashTime && Math.floor(this._fright / 0.2) % 2 === 0;
        body = flashing ? '#f4f4ff' : '#2121ff';
        face = flashing ? '#ff2020' : '#ffb8ae';
      }
      const top = y - 0.08;
      const bottom = y + R * 0.92;
      ctx.fillStyle = body;
      ctx.beginPath();
      ctx.arc(x, top, R, Math.PI, 0);
      ctx.lineTo(x + R, bottom);
      const phase = Math.floor(this._anim * 8) % 2;
      const n = 6;
      for (let i = 1; i <= n; i++) {
        const px = x + R - (2 * R * i) / n;
        const up = (i + phase) % 2 === 1;
        ctx.lineTo(px, up ? bottom - 0.26 : bottom);
      }
      ctx.closePath();
      ctx.fill();
      if (face) {
        ctx.fillStyle = face;
        ctx.fillRect(x - 0.36, y - 0.3, 0.2, 0.2);
        ctx.fillRect(x + 0.16, y - 0.3, 0.2, 0.2);
        ctx.strokeStyle = face;
        ctx.lineWidth = 0.09;
        ctx.beginPath();
        const my = y + 0.28;
        ctx.moveTo(x - 0.5, my + 0.06);
        for (let i = 1; i <= 6; i++) ctx.lineTo(x - 0.5 + i / 6, my + (i % 2 ? -0.08 : 0.06));
        ctx.stroke();
        return;
      }
    }
    const v = DIRS[g.dir] || DIRS.none;
    for (const side of [-1, 1]) {
      const ex = x + side * 0.3 + v.x * 0.08;
      const ey = y - 0.15 + v.y * 0.1;
      ctx.fillStyle = '#ffffff';
      ctx.beginPath();
      ctx.ellipse(ex, ey, 0.2, 0.26, 0, 0, Math.PI * 2);
      ctx.fill();
      ctx.fillStyle = '#2121ff';
      ctx.beginPath();
      ctx.arc(ex + v.x * 0.1, ey + v.y * 0.12, 0.11, 0, Math.PI * 2);
      ctx.fill();
    }
  }

  _drawFruit(ctx, kind, x, y) {
    const circle = (cx, cy, r, color) => {
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(cx, cy, r, 0, Math.PI * 2);
      ctx.fill();
    };
    const stem = (color, pts) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = 0.1;
      ctx.beginPath();
      ctx.moveTo(pts[0], pts[1]);
      for (let i = 2; i < pts.length; i += 2) ctx.lineTo(pts[i], pts[i + 1]);
      ctx.stroke();
    };
    switch (kind) {
      case 'cherry':
        stem('#c87f3a', [x - 0.3, y + 0.1, x + 0.35, y - 0.55, x + 0.3, y + 0.2]);
        circle(x - 0.3, y + 0.25, 0.3, '#ff0000');
        circle(x + 0.3, y + 0.35, 0.3, '#ff0000');
        break;
      case 'strawberry':
        ctx.fillStyle = '#ff1a1a';
        ctx.beginPath();
        ctx.moveTo(x - 0.55, y - 0.2);
        ctx.quadraticCurveTo(x, y - 0.45, x + 0.55, y - 0.2);
        ctx.quadraticCurveTo(x + 0.45, y + 0.5, x, y + 0.65);
        ctx.quadraticCurveTo(x - 0.45, y + 0.5, x - 0.55, y - 0.2);
        ctx.fill();
        ctx.fillStyle = '#ffffff';
        for (const [dx, dy] of [[-0.25, 0], [0.2, 0.05], [0, 0.3], [-0.1, -0.15], [0.25, -0.18]]) ctx.fillRect(x + dx, y + dy, 0.08, 0.08);
        stem('#2bd12b', [x - 0.3, y - 0.35, x + 0.3, y - 0.35]);
        break;
      case 'orange':
        circle(x, y + 0.1, 0.55, '#ffa500');
        stem('#2bd12b', [x, y - 0.45, x + 0.3, y - 0.6]);
        break;
      case 'apple':
        circle(x, y + 0.1, 0.55, '#ff1a1a');
        stem('#c87f3a', [x, y - 0.4, x + 0.1, y - 0.65]);
        break;
      case 'melon':
        circle(x, y + 0.05, 0.58, '#2bd12b');
        stem('#0a6b0a', [x - 0.3, y - 0.3, x - 0.3, y + 0.4]);
        stem('#0a6b0a', [x + 0.05, y - 0.45, x + 0.05, y + 0.55]);
        stem('#0a6b0a', [x + 0.35, y - 0.3, x + 0.35, y + 0.4]);
        break;
      case 'galaxian':
        ctx.fillStyle = '#ffff00';
        ctx.beginPath();
        ctx.moveTo(x, y + 0.6);
        ctx.lineTo(x - 0.6, y - 0.2);
        ctx.lineTo(x + 0.6, y - 0.2);
        ctx.closePath();
        ctx.fill();
        circle(x, y - 0.3, 0.22, '#2121ff');
        circle(x, y + 0.05, 0.12, '#ff0000');
        break;
      case 'bell':
        ctx.fillStyle = '#ffff00';
        ctx.beginPath();
        ctx.moveTo(x - 0.55, y + 0.4);
        ctx.quadraticCurveTo(x - 0.45, y - 0.6, x, y - 0.6);
        ctx.quadraticCurveTo(x + 0.45, y - 0.6, x + 0.55, y + 0.4);
        ctx.closePath();
        ctx.fill();
        circle(x, y + 0.45, 0.15, '#7fd4ff');
        break;
      default:
        ctx.strokeStyle = '#7fd4ff';
        ctx.lineWidth = 0.14;
        ctx.beginPath();
        ctx.arc(x, y - 0.3, 0.25, 0, Math.PI * 2);
        ctx.moveTo(x, y - 0.05);
        ctx.lineTo(x, y + 0.65);
        ctx.moveTo(x, y + 0.45);
        ctx.lineTo(x + 0.22, y + 0.45);
        ctx.moveTo(x, y + 0.25);
        ctx.lineTo(x + 0.18, y + 0.25);
        ctx.stroke();
        break;
    }
  }
}

if (!customElements.get('lockn-pacman')) customElements.define('lockn-pacman', LockNPacman);

export { LockNPacman };
