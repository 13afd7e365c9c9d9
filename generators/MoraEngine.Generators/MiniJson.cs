using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace MoraEngine.Generators
{
    /// <summary>
    /// A small strict JSON reader (objects → Dictionary, arrays → List, numbers → double, strings, bools, null):
    /// System.Text.Json is not available to a netstandard2.0 analyzer without shipping it alongside.
    /// </summary>
    internal sealed class MiniJson
    {
        private readonly string _s;
        private int _i;

        private MiniJson(string s) => _s = s;

        /// <exception cref="FormatException">Malformed JSON, with the character offset.</exception>
        public static object? Parse(string text)
        {
            var p = new MiniJson(text);
            p.SkipWs();
            var v = p.Value();
            p.SkipWs();
            if (p._i != text.Length) throw p.Error("unexpected text after the value");
            return v;
        }

        private FormatException Error(string what) => new($"{what} at offset {_i}");

        private void SkipWs()
        {
            while (_i < _s.Length && char.IsWhiteSpace(_s[_i])) _i++;
        }

        private object? Value()
        {
            if (_i >= _s.Length) throw Error("unexpected end of input");
            var c = _s[_i];
            switch (c)
            {
                case '{': return Object();
                case '[': return Array();
                case '"': return String();
                case 't': Literal("true"); return true;
                case 'f': Literal("false"); return false;
                case 'n': Literal("null"); return null;
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) return Number();
                    throw Error($"unexpected character '{c}'");
            }
        }

        private Dictionary<string, object?> Object()
        {
            var d = new Dictionary<string, object?>(StringComparer.Ordinal);
            _i++;
            SkipWs();
            if (Peek('}')) { _i++; return d; }
            while (true)
            {
                SkipWs();
                if (!Peek('"')) throw Error("expected a property name");
                var key = String();
                SkipWs();
                Expect(':');
                SkipWs();
                d[key] = Value();
                SkipWs();
                if (Peek(',')) { _i++; continue; }
                Expect('}');
                return d;
            }
        }

        private List<object?> Array()
        {
            var list = new List<object?>();
            _i++;
            SkipWs();
            if (Peek(']')) { _i++; return list; }
            while (true)
            {
                SkipWs();
                list.Add(Value());
                SkipWs();
                if (Peek(',')) { _i++; continue; }
                Expect(']');
                return list;
            }
        }

        private string String()
        {
            _i++;
            var sb = new StringBuilder();
            while (true)
            {
                if (_i >= _s.Length) throw Error("unterminated string");
                var c = _s[_i++];
                if (c == '"') return sb.ToString();
                if (c != '\\') { sb.Append(c); continue; }
                if (_i >= _s.Length) throw Error("unterminated escape");
                var e = _s[_i++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        if (_i + 4 > _s.Length) throw Error("short \\u escape");
                        sb.Append((char)int.Parse(_s.Substring(_i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        _i += 4;
                        break;
                    default: throw Error($"bad escape '\\{e}'");
                }
            }
        }

        private double Number()
        {
            var start = _i;
            while (_i < _s.Length && "+-0123456789.eE".IndexOf(_s[_i]) >= 0) _i++;
            if (!double.TryParse(_s.Substring(start, _i - start), NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                throw Error("malformed number");
            return v;
        }

        private void Literal(string word)
        {
            if (string.CompareOrdinal(_s, _i, word, 0, word.Length) != 0) throw Error($"expected '{word}'");
            _i += word.Length;
        }

        private bool Peek(char c) => _i < _s.Length && _s[_i] == c;

        private void Expect(char c)
        {
            if (!Peek(c)) throw Error($"expected '{c}'");
            _i++;
        }
    }
}
