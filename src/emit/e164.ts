import { createRequire } from 'node:module';
import type * as PhoneNumbers from 'libphonenumber-js';

/**
 * libphonenumber-js and its numbering metadata cost ~11 MB of RSS and only VXT endpoints use them:
 * they are loaded when a VXT endpoint is configured (`prepareE164`, from render.ts), never by a
 * daemon without one (issue #14, memory). `require` rather than `import()`: rendering is synchronous.
 */
let phoneNumbers: typeof PhoneNumbers | undefined;
export function prepareE164(): typeof PhoneNumbers {
  return (phoneNumbers ??= createRequire(import.meta.url)('libphonenumber-js') as typeof PhoneNumbers);
}

/**
 * A number as the PBX shows it (national `2125550800`, trunk-prefixed `020 7946 0018`, with an
 * international dialling prefix `011 44…`, or already `+44…`) → E.164 (`+442079460018`), using
 * libphonenumber-js's maintained numbering metadata rather than a hand-written rule per country.
 *
 * undefined when it is not a phone number: private or anonymous caller IDs (`anonymous`,
 * `Restricted`, empty), extensions, a SIP URI, or digits that are not a valid number in
 * `defaultCountry` (the country a number without `+` or an international prefix belongs to).
 */
export function toE164(number: string, defaultCountry: string): string | undefined {
  const text = number.trim();
  const { isSupportedCountry, parsePhoneNumberFromString } = prepareE164();
  if (text === '' || !isSupportedCountry(defaultCountry)) return undefined;
  // extract: false — the whole caller ID must be the number, so "sip:5551@host" is not read as 5551.
  const parsed = parsePhoneNumberFromString(text, { defaultCountry, extract: false });
  return parsed?.isValid() ? parsed.number : undefined;
}
