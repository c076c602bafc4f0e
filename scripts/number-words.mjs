// English words for 0 .. 9,999, as corpora/numbers.txt writes them ("4817" -> "four thousand
// eight hundred seventeen"; no "and", no hyphens).
const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** `n`: an integer in [0, 9999]. */
export function spell(n) {
  if (n === 0) return 'zero';
  const words = [];
  if (n >= 1000) words.push(ONES[Math.floor(n / 1000)], 'thousand');
  const h = Math.floor(n / 100) % 10;
  if (h > 0) words.push(ONES[h], 'hundred');
  const r = n % 100;
  if (r >= 20) words.push(TENS[Math.floor(r / 10)], ...(r % 10 ? [ONES[r % 10]] : []));
  else if (r > 0) words.push(ONES[r]);
  return words.join(' ');
}
