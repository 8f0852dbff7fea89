/** Random container names in Docker's style ("adjective_scientist"), from shorter lists than moby's. */
const LEFT = [
  'admiring', 'adoring', 'affectionate', 'agitated', 'amazing', 'angry', 'awesome', 'beautiful', 'blissful', 'bold', 'boring', 'brave', 'busy',
  'charming', 'clever', 'compassionate', 'competent', 'condescending', 'confident', 'cool', 'cranky', 'crazy', 'dazzling', 'determined', 'distracted',
  'dreamy', 'eager', 'ecstatic', 'elastic', 'elated', 'elegant', 'eloquent', 'epic', 'exciting', 'fervent', 'festive', 'flamboyant', 'focused',
  'friendly', 'frosty', 'funny', 'gallant', 'gifted', 'goofy', 'gracious', 'great', 'happy', 'hardcore', 'heuristic', 'hopeful', 'hungry',
  'infallible', 'inspiring', 'intelligent', 'interesting', 'jolly', 'jovial', 'keen', 'kind', 'laughing', 'loving', 'lucid', 'magical', 'modest',
  'musing', 'mystifying', 'naughty', 'nervous', 'nice', 'nifty', 'nostalgic', 'objective', 'optimistic', 'peaceful', 'pedantic', 'pensive',
  'practical', 'priceless', 'quirky', 'quizzical', 'recursing', 'relaxed', 'reverent', 'romantic', 'sad', 'serene', 'sharp', 'silly', 'sleepy',
  'stoic', 'strange', 'stupefied', 'suspicious', 'sweet', 'tender', 'thirsty', 'trusting', 'unruffled', 'upbeat', 'vibrant', 'vigilant',
  'vigorous', 'wizardly', 'wonderful', 'xenodochial', 'youthful', 'zealous', 'zen',
];
const RIGHT = [
  'agnesi', 'albattani', 'allen', 'archimedes', 'babbage', 'banach', 'bardeen', 'bartik', 'bell', 'bhabha', 'blackwell', 'bohr', 'booth',
  'borg', 'bose', 'brahmagupta', 'brattain', 'burnell', 'cannon', 'carson', 'cartwright', 'cerf', 'chandrasekhar', 'clarke', 'curie', 'darwin',
  'davinci', 'dijkstra', 'dirac', 'easley', 'einstein', 'elion', 'engelbart', 'euclid', 'euler', 'faraday', 'fermat', 'fermi', 'feynman',
  'franklin', 'galileo', 'gauss', 'goldberg', 'goodall', 'hamilton', 'hawking', 'heisenberg', 'hertz', 'hodgkin', 'hopper', 'hypatia',
  'jackson', 'jemison', 'jennings', 'johnson', 'kalam', 'kepler', 'khorana', 'knuth', 'kowalevski', 'lalande', 'lamarr', 'leakey', 'lovelace',
  'lumiere', 'mahavira', 'maxwell', 'mayer', 'mccarthy', 'mcclintock', 'meitner', 'mendel', 'mirzakhani', 'montalcini', 'morse', 'napier',
  'newton', 'nobel', 'noether', 'pascal', 'pasteur', 'payne', 'perlman', 'pike', 'poincare', 'ptolemy', 'raman', 'ramanujan', 'ritchie',
  'rosalind', 'sammet', 'shannon', 'shaw', 'sinoussi', 'stonebraker', 'swanson', 'tesla', 'thompson', 'torvalds', 'turing', 'varahamihira',
  'visvesvaraya', 'volhard', 'wescoff', 'wiles', 'williams', 'wilson', 'wing', 'wozniak', 'wright', 'yalow', 'yonath',
];

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)]!;
}

/** "adjective_surname", with a digit appended when `suffix` is given (after collisions, as Docker does). */
export function randomName(suffix?: number): string {
  const name = `${pick(LEFT)}_${pick(RIGHT)}`;
  return suffix === undefined ? name : `${name}${suffix}`;
}
